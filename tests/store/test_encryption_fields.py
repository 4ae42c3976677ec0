"""Issue 11, item 9: with LATTICE_ENCRYPTION_KEYS set, no field derived from gem text is
stored in plain text: content, titles (given, derived from the first line, Markdown
headings), reflection questions and answers, the titles and contents the log keeps, and
snapshots (which copy the rows as stored). Everything reads back; rotation re-encrypts all
of it; text search still finds titles. Checked on the raw database rows (and, on SQLite,
the raw bytes of the database file) with distinctive marker words."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import MetaData, select

from core.access import SYSTEM, Actor, Role
from core.errors import LatticeError, ValidationError
from core.store import EncryptionError, Store

from tests.store.conftest import RESEARCHER, write_jsonl

ADMIN = Actor("ada", Role.ADMIN)
KEY_OLD, KEY_NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
# one marker word per kind of field, each unlikely anywhere else
MARKERS = {"content": "zanzibarcontent", "title": "quokkatitle", "derived": "xylophonederived",
           "heading": "marzipanheading", "question": "periwinklequestion", "answer": "kumquatanswer",
           "edit_title": "ocelotedited", "edit_content": "tamarindedited", "deleted": "nebulosadeleted"}


def _raw_text(store: Store) -> str:
    """Every value of every row of every table, as text (what someone with the database sees)."""
    meta = MetaData()
    meta.reflect(store.engine)
    parts = []
    with store.engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                parts.extend(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
    return "\n".join(parts)


def _raw_without_ids(store: Store) -> str:
    """:func:`_raw_text` with the ids of the Markdown sections (``file#heading-slug``: ids stay
    visible, as the README says) masked."""
    raw = _raw_text(store)
    for gid in store.gem_texts("notes")["id"]:
        raw = raw.replace(gid, "<id>")
    return raw


def _raw_file_text(url: str) -> str:
    if not url.startswith("sqlite:///"):
        return ""
    path = Path(url[len("sqlite:///"):])
    return "".join(p.read_bytes().decode("latin-1") for p in (path, Path(f"{path}-wal")) if p.exists())


def _fill(store: Store, tmp_path: Path) -> int:
    m = MARKERS
    src = write_jsonl(tmp_path / "g.jsonl", [
        {"id": "a", "title": f"The {m['title']} gem", "content": f"Waves carry {m['content']} far."},
        {"id": "b", "content": f"{m['derived']} is the first line\nand then more about tides."},
        {"id": "c", "content": f"Gone soon: {m['deleted']}.", "title": f"title {m['deleted']}"},
        {"id": "d", "content": "A plain gem that will be edited."},
    ])
    store.import_path("lab", src, SYSTEM)
    md = tmp_path / "notes"
    md.mkdir()
    (md / "n.md").write_text(f"# {m['heading']} section\n\nBody one.\n\n# Second part\n\nBody two.\n")
    store.import_path("notes", md, SYSTEM, split_headings=True)
    store.update_gem("lab", "d", RESEARCHER, title=f"now {m['edit_title']}", content=f"now {m['edit_content']}")
    store.delete_gem("lab", "c", RESEARCHER)
    store.record_reflection("lab", RESEARCHER, f"What about {m['question']}?", f"It says {m['answer']} [a].",
                            gems_used=[{"gem_id": "a", "score": 0.5}])
    store.apply_reflection("lab", ["a", "b"], RESEARCHER,
                           reflection={"query": f"again {m['question']}", "answer": f"again {m['answer']}"})
    return 2


def test_no_plaintext_of_any_text_field_in_the_database_and_everything_reads_back(db_url, tmp_path):
    with Store.open(db_url, keys=[KEY_OLD]) as s:
        _fill(s, tmp_path)
        raw = _raw_without_ids(s)
        if db_url.startswith("sqlite"):
            assert not [k for k, w in MARKERS.items() if w in _raw_file_text(db_url) and k != "heading"]
        leaked = sorted(k for k, word in MARKERS.items() if word in raw)
        assert not leaked, f"plaintext in the database: {leaked}"
        m = MARKERS
        assert s.get_gem("lab", "a")["title"] == f"The {m['title']} gem"
        assert s.get_gem("lab", "a")["content"] == f"Waves carry {m['content']} far."
        assert s.get_gem("lab", "b")["title"] == f"{m['derived']} is the first line"
        assert s.get_gem("lab", "d")["title"] == f"now {m['edit_title']}"
        notes = s.gem_texts("notes")
        assert f"{m['heading']} section" in notes["title"].tolist()
        refl = s.list_reflections("lab")
        assert sorted(refl["query"]) == [f"What about {m['question']}?", f"again {m['question']}"]
        assert sorted(refl["answer"]) == [f"It says {m['answer']} [a].", f"again {m['answer']}"]
        df, total = s.list_gems("lab", text=m["title"].upper())  # search finds encrypted titles
        assert total == 1 and df.iloc[0]["id"] == "a" and df.iloc[0]["title"] == f"The {m['title']} gem"
        out = tmp_path / "export.jsonl"
        s.export("lab", out)
        text = out.read_text()
        assert m["title"] in text and m["derived"] in text and "fernet:" not in text
        snap = s.backup("lab", tmp_path / "snap.zip", ADMIN)
    with zipfile.ZipFile(snap["path"]) as z:  # a snapshot copies the tokens: no plaintext in it either
        members = "".join(z.read(n).decode("latin-1") for n in z.namelist())
    assert not [k for k, word in MARKERS.items() if word in members and k not in ("deleted",)]
    with Store.open(db_url, keys=[]) as nokey:  # without the key: a clear error, never tokens as text
        with pytest.raises(EncryptionError, match="LATTICE_ENCRYPTION_KEYS"):
            nokey.get_gem("lab", "a")
        with pytest.raises(EncryptionError):
            nokey.list_reflections("lab")


def test_rotation_re_encrypts_titles_reflections_and_log_values(db_url, tmp_path):
    with Store.open(db_url, keys=[KEY_OLD]) as old:
        _fill(old, tmp_path)
        before = _raw_text(old)
        status = old.encryption_status()
        assert status["plaintext"] == 0 and status["older_key"] == 0 and status["current_key"] == status["gems"]
        assert status["reflections"] == 2 and status["reflections_current_key"] == 2
    with Store.open(db_url, keys=[KEY_NEW, KEY_OLD]) as both:
        status = both.encryption_status()
        assert status["older_key"] == status["gems"] and status["reflections_older_key"] == 2
        counts = both.rotate_keys(ADMIN, batch_size=2)
        assert counts["rotated"] == status["gems"] and counts["reflections"] == 2
        assert counts["log_entries"] == 2  # the edit (title + content) and the delete
        after = both.encryption_status()
        assert after["current_key"] == after["gems"] and after["reflections_current_key"] == 2
        assert both.rotate_keys(ADMIN)["rotated"] == 0
        assert _raw_text(both) != before
    with Store.open(db_url, keys=[KEY_NEW]) as new:  # the old key can go: everything still reads
        m = MARKERS
        assert new.get_gem("lab", "a")["title"] == f"The {m['title']} gem"
        assert f"again {m['answer']}" in new.list_reflections("lab")["answer"].tolist()
        log = new.transactions("lab", kinds=["edit", "delete"])
        new_cipher = new.cipher
        edit = log[log["kind"] == "edit"].iloc[-1]
        assert new_cipher.decrypt(edit["after"]["title"][0]) == f"now {m['edit_title']}"
        assert new_cipher.decrypt(edit["after"]["content"][0]) == f"now {m['edit_content']}"
        deleted = log[log["kind"] == "delete"].iloc[-1]
        assert m["deleted"] in new_cipher.decrypt(deleted["before"]["title"])
        assert new_cipher.is_current(deleted["before"]["content"])


def test_plaintext_titles_and_reflections_are_encrypted_by_rotation(db_url, tmp_path):
    with Store.open(db_url, keys=[]) as plain:
        _fill(plain, tmp_path)
        assert MARKERS["title"] in _raw_text(plain)
        snap = plain.backup("lab", tmp_path, SYSTEM)
    with Store.open(db_url, keys=[KEY_NEW]) as enc:
        status = enc.encryption_status()
        assert status["plaintext"] == status["gems"] and status["reflections_plaintext"] == 2
        enc.rotate_keys(ADMIN)
        raw = _raw_without_ids(enc)
        assert not [k for k, word in MARKERS.items() if word in raw]
        enc.restore(snap["path"], ADMIN, overwrite=True)  # a plain-text snapshot: titles encrypted on restore too
        assert MARKERS["title"] not in _raw_text(enc)
        assert enc.get_gem("lab", "a")["title"] == f"The {MARKERS['title']} gem"


def test_encrypted_titles_fit_their_column(db_url, tmp_path):
    with Store.open(db_url, keys=[KEY_OLD]) as s:
        s.create_lattice("lab", RESEARCHER)
        long_line = "\U0001F30A" * 80  # a derived title of 80 four-byte characters (320 bytes)
        gid = s.add_gem("lab", RESEARCHER, long_line + "\nmore")
        title = s.get_gem("lab", gid)["title"]
        assert long_line.startswith(title) and len(title.encode()) <= 303  # shortened to fit, still a prefix
        with pytest.raises(ValidationError, match="too long for an encrypted title"):
            s.add_gem("lab", RESEARCHER, "short", title="t" * 400)
        gid2 = s.add_gem("lab", RESEARCHER, "short", title="t" * 303)
        assert s.get_gem("lab", gid2)["title"] == "t" * 303
        snap = s.backup("lab", tmp_path, ADMIN)
        s.restore(snap["path"], ADMIN, name="copy")  # the snapshot's tokens pass its validation
        assert s.get_gem("copy", gid2)["title"] == "t" * 303


def test_text_that_only_looks_like_a_token_is_plain_text(db_url):
    with Store.open(db_url, keys=[]) as s:
        s.create_lattice("lab", RESEARCHER)
        gid = s.add_gem("lab", RESEARCHER, "fernet: a note about the cipher", title="fernet:x")
        assert s.get_gem("lab", gid)["content"] == "fernet: a note about the cipher"
        assert s.get_gem("lab", gid)["title"] == "fernet:x"


# ------------------------------------------------ the keyed embedder (dictionary attacks)
def _attack(gem_vec, embedder, words):
    """Rank candidate words by how much of each shows in a gem's embedding (a dictionary attack)."""
    import numpy as np
    scores = embedder.embed(words) @ gem_vec
    return [words[i] for i in np.argsort(-scores)]


def test_keyed_hashing_embedding_resists_the_dictionary_attack_that_hashing_v1_allows(monkeypatch, db_url):
    from core.knowledge import get_embedder
    from core.knowledge.keyed_hashing import KeyedHashingEmbedder

    secret = "the vault code word is periwinkle and the place is zanzibar"
    words = sorted({"periwinkle", "zanzibar", "vault"} | {f"word{i}" for i in range(300)}
                   | {"apple", "river", "clock", "memory", "banana", "waves", "tides", "quantum"})
    public = get_embedder("hashing-v1")
    assert set(_attack(public.embed([secret])[0], public, words)[:3]) == {"periwinkle", "zanzibar", "vault"}
    key = "k" * 16 + "fixed-test-key-0123456789"
    keyed = KeyedHashingEmbedder(key=key)
    vec = keyed.embed([secret])[0]
    for guess in (public, KeyedHashingEmbedder(key="another-key-" + "x" * 30)):  # no key, or a wrong one
        top = _attack(vec, guess, words)[:10]
        assert not {"periwinkle", "zanzibar", "vault"} & set(top)
    assert set(_attack(vec, keyed, words)[:3]) == {"periwinkle", "zanzibar", "vault"}  # only with the key
    # in a store: the embedder is chosen by name, the key comes from the environment
    monkeypatch.delenv("LATTICE_EMBEDDING_KEY", raising=False)
    with pytest.raises(LatticeError, match="LATTICE_EMBEDDING_KEY"):
        get_embedder("hashing-v1-keyed")
    monkeypatch.setenv("LATTICE_EMBEDDING_KEY", key)
    with Store.open(db_url, keys=[KEY_OLD]) as s:
        s.create_lattice("lab", RESEARCHER, embedder="hashing-v1-keyed")
        gid = s.add_gem("lab", RESEARCHER, secret)
        s.add_gem("lab", RESEARCHER, "bananas and apples in the kitchen")
        assert s.info("lab").embedder == "hashing-v1-keyed"
        import numpy as np
        np.testing.assert_array_equal(s.embeddings("lab", [gid])[0], vec)
        assert key not in repr(get_embedder("hashing-v1-keyed"))
