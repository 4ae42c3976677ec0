"""Issue 11, item 8: ``update_gem`` treats a field given as None as "not given" (for every
editable field), and one lattice-name rule applies wherever a name enters (create, import
into a new lattice, restore under a new name): no trailing newline, control characters,
leading/trailing whitespace, non-NFC spellings, or look-alikes of an existing name."""
from __future__ import annotations

import pytest

from core.errors import ValidationError
from core.store import ConflictError
from tests.store.conftest import RESEARCHER

EDITED = {"title": "New title", "content": "Fresh text about rivers.", "tags": ["fresh"], "source": "edit",
          "energy": 2.5, "phase": 1.25, "coherence": 0.4, "uncertainty": 0.6}


@pytest.mark.parametrize("field", sorted(EDITED))
def test_update_gem_none_means_unchanged_for_every_field(filled, field):
    before = filled.get_gem("lab", "g003")
    assert before[field] != EDITED[field]
    after = filled.update_gem("lab", "g003", RESEARCHER, **{field: EDITED[field]})
    assert after[field] == EDITED[field]
    again = filled.update_gem("lab", "g003", RESEARCHER, **{field: None})  # a form's untouched field
    assert again == after  # unchanged, not reset to a default, and nothing written (no version bump)
    others = {k: None for k in EDITED if k != field}
    both = filled.update_gem("lab", "g003", RESEARCHER, **{field: before[field]}, **others)
    assert both[field] == before[field]
    assert all(both[k] == after[k] for k in EDITED if k != field)


def test_update_gem_energy_none_keeps_energy(filled):
    e = filled.get_gem("lab", "g005")["energy"]
    assert e != 1.0  # the default it used to be reset to
    assert filled.update_gem("lab", "g005", RESEARCHER, energy=None, title="t")["energy"] == e


@pytest.mark.parametrize("bad", ["base\n", "base\r\n", "base ", " base", "base\t", "ba\x00se", "ba\x1bse",
                                 "base\u200b", "e\u0301t\u00e9", "", "x" * 201, "-base"])
def test_lattice_names_refused_everywhere_a_name_enters(store, sample_file, tmp_path, bad):
    from core.access import SYSTEM
    store.create_lattice("base", RESEARCHER)
    store.import_path("lab", sample_file, SYSTEM)
    snap = store.backup("lab", tmp_path, SYSTEM)["path"]
    before = [i.name for i in store.list_lattices()]
    with pytest.raises(ValidationError, match="not allowed"):
        store.create_lattice(bad, RESEARCHER)
    with pytest.raises(ValidationError, match="not allowed"):
        store.import_path(bad, sample_file, SYSTEM)
    if bad:  # (an empty name means "the snapshot's own name" to restore)
        with pytest.raises(ValidationError, match="not allowed"):
            store.restore(snap, SYSTEM, name=bad)
    assert [i.name for i in store.list_lattices()] == before


@pytest.mark.parametrize("twin", ["Base", "BASE", "\uff42\uff41\uff53\uff45"])
def test_look_alike_lattice_names_are_refused(store, sample_file, twin):
    from core.access import SYSTEM
    store.create_lattice("base", RESEARCHER)
    with pytest.raises(ConflictError, match="looks like the existing lattice 'base'"):
        store.create_lattice(twin, RESEARCHER)
    with pytest.raises(ConflictError, match="looks like"):
        store.import_path(twin, sample_file, SYSTEM)
    assert [i.name for i in store.list_lattices()] == ["base"]
    store.import_path("base", sample_file, SYSTEM)  # the name itself still works
    assert store.info("base").gems == 12


def test_lattice_name_rule_property():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from core.store.kernel import check_name

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.characters(whitelist_categories=("Cc", "Zs", "Zl", "Zp", "Cf")), min_size=1, max_size=3),
           st.sampled_from(["prefix", "suffix", "inside"]), st.text(alphabet="abc", min_size=1, max_size=5))
    def check(junk, where, word):
        name = {"prefix": junk + word, "suffix": word + junk, "inside": word + junk + word}[where]
        ok = all(ch == " " for ch in junk) and where == "inside"  # single inner spaces are fine
        if ok:
            check_name(name)
        else:
            with pytest.raises(ValidationError):
                check_name(name)

    check()
