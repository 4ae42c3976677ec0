"""The login gate and logout button (streamlit-authenticator 0.4.x on core.auth).

Configuration, hashing, demo users, role lookup and the refuse-to-start check live
in :mod:`core.auth`; this module only renders. :func:`core.auth.check_login` checks the
bcrypt password (as long for an unknown user as for a known one) and
:func:`core.auth.issue_cookie_token` signs the re-login cookie (JWT in a cookie named
``gem_lattice_auth`` with a session id), set in the browser by the authenticator's cookie
manager. Every run checks the cookie's (or the logged-in session's) session id against the
server-side :class:`core.auth.RevocationList`: "Log out" revokes it, so a copy of the cookie
taken before is refused afterwards, in every session and app process sharing the list.

The cookie is **not HttpOnly**: streamlit-authenticator 0.4.x sets it through
extra-streamlit-components' CookieManager, a JavaScript component that writes
``document.cookie``, and browsers never let script set (or keep) HttpOnly cookies;
Streamlit offers no server-side ``Set-Cookie`` for app code. It is ``SameSite=Strict``.

Why the login page renders no streamlit-authenticator ``Authenticate`` object:
constructing one renders the cookie-manager iframe component, which sends its value
(``setComponentValue``) whenever its iframe (re)loads, and every such message is a
full rerun. With Streamlit's ``runner.fastReruns`` (the default) a rerun request
*stops* the run in progress at its next yield point (any ``st.*`` call or
``st.session_state`` access) and starts a new run from the browser's latest widget
state, in which the form's one-shot submit trigger has already been consumed. On a
cold, CPU-starved server the iframe loads late, so its message could land during the
"Log in" run and silently drop the click. So the login page checks the password
(:func:`core.auth.check_login`, no component) and validates the re-login cookie from
``st.context.cookies`` itself; the component (needed only to set or delete the cookie)
is rendered only once the session is logged in.
"""
from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import LoginError

from core.access import Actor
from core.auth import (COOKIE_KEY_ENV, CREDENTIALS_ENV, DEMO_ENV, DEMO_PASSWORD, DEMO_USERS, LOCKOUT_ENV,
                       MAX_FAILURES_ENV, AuthConfig, AuthConfigError, LoginLocked, LoginThrottle, RevocationList,
                       check_login, credentials_path, is_loopback, issue_cookie_token, load_auth_config,
                       revocations_path, token_version, verify_cookie_token)

AUTHENTICATOR_KEY = "_lattice_authenticator"
_AUTH_SESSION_KEYS = ("name", "username", "authentication_status", "email", "roles")
_CLEAR_KEY = "_lattice_clear_session"
_LOGIN_SESSION_KEY = "_lattice_login_session"
_SESSION_TOKEN_KEY = "_lattice_session_token"  # the payload of this session's cookie (jti, exp_date, ver)
_log = logging.getLogger("lattice.auth")


@st.cache_resource(show_spinner=False)
def _revocation_list(path: str) -> RevocationList:
    return RevocationList(path)


def revocation_list() -> RevocationList:
    """The process's view of the shared revoked-session list (re-read when the file changes)."""
    return _revocation_list(str(revocations_path()))


@st.cache_resource(show_spinner=False)
def _throttle(max_failures: str, lockout_s: str) -> LoginThrottle:
    return LoginThrottle()  # reads the same environment variables


def login_throttle() -> LoginThrottle:
    """The process-wide failed-login counter (per user and per session, with a lock-out)."""
    return _throttle(os.environ.get(MAX_FAILURES_ENV, ""), os.environ.get(LOCKOUT_ENV, ""))


def _login_session_id() -> str:
    if _LOGIN_SESSION_KEY not in st.session_state:
        st.session_state[_LOGIN_SESSION_KEY] = uuid.uuid4().hex
    return st.session_state[_LOGIN_SESSION_KEY]


def _clear_after_logout() -> None:
    """Forget the logged-out user's parameters, results and widget values (start of a run)."""
    if st.session_state.pop(_CLEAR_KEY, False):
        for key in list(st.session_state.keys()):
            if key not in (AUTHENTICATOR_KEY, "logout", *_AUTH_SESSION_KEYS):
                del st.session_state[key]


def _secret_cookie_key() -> str | None:
    try:
        value = st.secrets.get("cookie_key")
    except Exception:  # no secrets.toml at all: that is allowed (env var or demo mode)
        return None
    return str(value) if value else None


@st.cache_resource(show_spinner=False)
def _cached_config(cookie_key: str | None, env_key: tuple, path: str, mtime: float) -> AuthConfig:
    # Outside demo mode the check bcrypt-verifies every user: cache it per file version.
    return load_auth_config(cookie_key=cookie_key)


def auth_config() -> AuthConfig:
    """The login configuration; raises :class:`AuthConfigError` when it is unsafe."""
    path = credentials_path()
    mtime = path.stat().st_mtime if path.exists() else 0.0
    env_key = tuple(os.environ.get(k, "") for k in (DEMO_ENV, COOKIE_KEY_ENV, CREDENTIALS_ENV))
    return _cached_config(_secret_cookie_key(), env_key, str(path), mtime)


def session_actor(config: AuthConfig) -> Actor | None:
    """The logged-in user of this session, if any (role from the credentials)."""
    if st.session_state.get("authentication_status") is not True:
        return None
    return config.actor(st.session_state.get("username"))


def _session_revoked(config: AuthConfig) -> bool:
    """True if this logged-in session's cookie session was logged out (here, in another tab or on
    another node) or its user's token version changed (e.g. a new password)."""
    payload = st.session_state.get(_SESSION_TOKEN_KEY)
    if not isinstance(payload, dict):
        return False  # a session without a cookie session (none issued): nothing to revoke
    return (revocation_list().is_revoked(str(payload.get("jti")))
            or token_version(config.credentials, str(payload.get("username"))) != payload.get("ver"))


def _end_session() -> None:
    for key in _AUTH_SESSION_KEYS:
        st.session_state[key] = None
    st.session_state.pop(_SESSION_TOKEN_KEY, None)
    st.session_state[_CLEAR_KEY] = True  # the next run drops the rest of this user's session state


def _start_session(config: AuthConfig, username: str, payload: dict | None) -> Actor | None:
    """Set the session keys streamlit-authenticator sets (its logout and our pages read them)."""
    name = str(username).strip().lower()
    user = config.credentials.get("usernames", {}).get(name)
    if not isinstance(user, dict):
        return None
    st.session_state.update({"username": name, "name": user.get("name", name), "email": user.get("email"),
                             "roles": user.get("roles"), "authentication_status": True, "logout": None})
    if payload is not None:
        st.session_state[_SESSION_TOKEN_KEY] = payload
    return session_actor(config)


def _make_authenticator(config: AuthConfig) -> stauth.Authenticate:
    # Renders the cookie manager component (its iframe reruns the script when it loads):
    # only for a session that is being logged in, at most once per script run.
    auth = stauth.Authenticate(config.fresh_credentials(), config.cookie_name, config.cookie_key,
                               config.cookie_expiry_days, auto_hash=False, login_sleep_time=0)
    st.session_state[AUTHENTICATOR_KEY] = auth
    return auth


def _valid_cookie_token(config: AuthConfig) -> dict | None:
    """The re-login cookie's payload if it is a live, unrevoked session of a known user (no component)."""
    if st.session_state.get("logout"):  # logged out in this session: no silent re-login
        return None
    return verify_cookie_token(st.context.cookies.get(config.cookie_name), config.cookie_key,
                               config.credentials, revocation_list())


def _set_cookie(config: AuthConfig, authenticator: stauth.Authenticate, username: str) -> dict | None:
    """Issue a new cookie session for ``username`` and have the cookie manager set it."""
    if not config.cookie_expiry_days:
        return None
    token, payload = issue_cookie_token(config.credentials, username, config.cookie_key, config.cookie_expiry_days)
    authenticator.cookie_controller.cookie_model.cookie_manager.set(
        config.cookie_name, token, expires_at=datetime.fromtimestamp(payload["exp_date"]), same_site="strict")
    return payload


def _announce_bind(config: AuthConfig) -> str:
    """Where this server listens (logged once per process); the demo login page shows it."""
    address = str(st.get_option("server.address") or "").strip() or "0.0.0.0"
    _log_bind_once(address, int(st.get_option("server.port") or 8501), config.demo)
    return address


@st.cache_resource(show_spinner=False)
def _log_bind_once(address: str, port: int, demo: bool) -> bool:
    reach = "this machine only" if is_loopback(address) else "every machine that can reach it"
    _log.warning("listening on %s:%s (%s)%s", address, port, reach,
                 "; demo mode: published passwords" if demo else "")
    return True


def _login_page() -> None:  # the only page before login; the form is drawn by login_gate
    return None


def login_gate(hide_navigation: bool = False) -> Actor:
    """Return the logged-in :class:`Actor`, or show the login form and stop the script.

    Refuses to go on (``st.error`` + ``st.stop``) when :func:`core.auth.load_auth_config`
    finds the configuration unsafe. Cheap when the session is already logged in, so
    both ``app.py`` and every page (via ``ui.context``) call it. ``hide_navigation``
    (app.py only): register a single hidden "Log in" page so that the ``pages/``
    directory is not offered as navigation before login.
    """
    try:
        config = auth_config()
    except AuthConfigError as exc:
        st.error(f"**Gem Lattice Workbench cannot start.** {exc}")
        st.stop()
    _announce_bind(config)  # one log line per process: where this server listens
    actor = session_actor(config)
    if actor is not None and _session_revoked(config):
        _end_session()  # logged out elsewhere (another tab or node) or the password changed
        st.session_state["logout"] = True
        actor = None
    if actor is not None:
        return actor

    _clear_after_logout()
    for key in _AUTH_SESSION_KEYS:  # the keys streamlit-authenticator initialises (pages read them)
        st.session_state.setdefault(key, None)
    authenticator = None  # rendered only for a session being logged in (see the module doc)
    payload = _valid_cookie_token(config)
    if payload is not None:
        authenticator = _make_authenticator(config)  # the cookie manager, for the logout button
        actor = _start_session(config, payload["username"], payload)  # re-login from the cookie
        if actor is not None:
            return actor

    if hide_navigation:
        st.navigation([st.Page(_login_page, title="Log in", url_path="login", default=True)], position="hidden")
    form_area = st.empty()
    with form_area.container():
        left, mid, right = st.columns([1, 1.4, 1])
        with mid:
            st.title(":material/diamond: Gem Lattice Workbench")
            st.caption("A time-decaying, interfering memory of gems: tune it, watch it, question it.")
            if config.demo:
                users = ", ".join(f"`{u}`" for u in DEMO_USERS)
                address = _announce_bind(config)
                reach = (f"This server listens on `{address}` only: other machines cannot reach it."
                         if is_loopback(address) else
                         f"This server listens on `{address}`: **other machines can reach it** with these "
                         f"published passwords.")
                st.info(f"**Demo mode** (`{DEMO_ENV}=1`): log in as {users}, each with the password "
                        f"`{DEMO_PASSWORD}`. Do not use demo mode for real data. {reach}", icon=":material/science:")
            with st.form("login_form"):
                st.subheader("Log in")
                username = st.text_input("Username", key="login_username", autocomplete="username")
                password = st.text_input("Password", type="password", key="login_password",
                                         autocomplete="current-password")
                submitted = st.form_submit_button("Log in", type="primary", width="stretch")
            message = st.empty()
    if submitted:
        try:
            throttle = login_throttle()
        except AuthConfigError as exc:
            st.error(f"**Gem Lattice Workbench cannot start.** {exc}")
            st.stop()
        sid = _login_session_id()
        try:
            throttle.check(username, sid)  # locked out: the password is not even checked
        except LoginLocked as exc:
            message.error(f"Log-in refused: {exc}.", icon=":material/lock_clock:")
            st.stop()
        ok = check_login(config.credentials, username, password)  # one bcrypt check, known user or not
        actor = _start_session(config, username, None) if ok else None
        if actor is not None:
            throttle.record_success(username, sid)
            form_area.empty()
            if authenticator is None:
                authenticator = _make_authenticator(config)
            payload = _set_cookie(config, authenticator, actor.name)
            if payload is not None:
                st.session_state[_SESSION_TOKEN_KEY] = payload
            return actor
        st.session_state["authentication_status"] = False  # as streamlit-authenticator reports a failure
        locked = throttle.record_failure(username, sid)
        if locked:
            message.error(f"Username or password is incorrect. Too many failed attempts: log-in is locked "
                          f"for {locked:g} s.", icon=":material/lock_clock:")
        else:
            left = throttle.failures_left(username, sid)
            message.error("Username or password is incorrect."
                          + (f" {left} attempt(s) left before a {throttle.lockout_s:g} s lock-out." if left <= 2
                             else ""))
    st.stop()


def revoke_session_cookies() -> None:
    """Revoke (server-side) this session's cookie session and the browser's current cookie."""
    try:
        config = auth_config()
    except AuthConfigError:
        return
    sessions = [st.session_state.get(_SESSION_TOKEN_KEY)]
    sessions.append(verify_cookie_token(st.context.cookies.get(config.cookie_name), config.cookie_key,
                                        config.credentials, revocation_list()))
    for payload in sessions:
        if isinstance(payload, dict) and payload.get("jti"):
            revocation_list().revoke(str(payload["jti"]), float(payload["exp_date"]))


def logout_button(container=None) -> None:
    """A logout button; on click clears the session's login and deletes the cookie."""
    target = container if container is not None else st.sidebar
    if not target.button("Log out", key="logout_button", icon=":material/logout:", width="stretch"):
        return
    revoke_session_cookies()
    authenticator = st.session_state.get(AUTHENTICATOR_KEY)
    if authenticator is not None and st.session_state.get("authentication_status"):
        with target:
            try:
                authenticator.logout(location="unrendered")  # also deletes the cookie in the browser
            except LoginError:
                pass
    _end_session()
    st.session_state["logout"] = True
    st.success("You are logged out.")
    st.button("Log in again", key="login_again", type="primary")
    st.stop()
