"""The login gate and logout button (streamlit-authenticator 0.4.x on core.auth).

Configuration, hashing, demo users, role lookup and the refuse-to-start check live
in :mod:`core.auth`; this module only renders. The authenticator checks the bcrypt
password and signs the re-login cookie (JWT in a cookie named ``gem_lattice_auth``).

Why the login page renders no streamlit-authenticator ``Authenticate`` object:
constructing one renders the cookie-manager iframe component, which sends its value
(``setComponentValue``) whenever its iframe (re)loads, and every such message is a
full rerun. With Streamlit's ``runner.fastReruns`` (the default) a rerun request
*stops* the run in progress at its next yield point (any ``st.*`` call or
``st.session_state`` access) and starts a new run from the browser's latest widget
state, in which the form's one-shot submit trigger has already been consumed. On a
cold, CPU-starved server the iframe loads late, so its message could land during the
"Log in" run and silently drop the click. So the login page checks the password with
the authenticator's component-free :class:`AuthenticationController` and validates
the re-login cookie from ``st.context.cookies`` itself; the component (needed only to
set or delete the cookie) is rendered only once the session is logged in.
"""
from __future__ import annotations

import os
import time
import uuid

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.controllers import AuthenticationController
from streamlit_authenticator.utilities import LoginError

from core.access import Actor
from core.auth import (COOKIE_KEY_ENV, CREDENTIALS_ENV, DEMO_ENV, DEMO_PASSWORD, DEMO_USERS, LOCKOUT_ENV,
                       MAX_FAILURES_ENV, AuthConfig, AuthConfigError, LoginLocked, LoginThrottle, credentials_path,
                       load_auth_config)

AUTHENTICATOR_KEY = "_lattice_authenticator"
_AUTH_SESSION_KEYS = ("name", "username", "authentication_status", "email", "roles")
_CLEAR_KEY = "_lattice_clear_session"
_LOGIN_SESSION_KEY = "_lattice_login_session"


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


def _make_authenticator(config: AuthConfig) -> stauth.Authenticate:
    # Renders the cookie manager component (its iframe reruns the script when it loads):
    # only for a session that is being logged in, at most once per script run.
    auth = stauth.Authenticate(config.fresh_credentials(), config.cookie_name, config.cookie_key,
                               config.cookie_expiry_days, auto_hash=False, login_sleep_time=0)
    st.session_state[AUTHENTICATOR_KEY] = auth
    return auth


def _valid_cookie_token(config: AuthConfig) -> dict | None:
    """The signed re-login cookie's payload if it is valid for a known user (no component)."""
    if st.session_state.get("logout"):  # logged out in this session: no silent re-login
        return None
    token = st.context.cookies.get(config.cookie_name)
    if not token:
        return None
    try:
        payload = jwt.decode(token, config.cookie_key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    if not isinstance(payload, dict) or "username" not in payload:
        return None
    try:
        if float(payload.get("exp_date", 0)) <= time.time():
            return None
    except (TypeError, ValueError):
        return None
    return payload if config.actor(payload["username"]) is not None else None


def _check_password(config: AuthConfig, username: str, password: str) -> bool:
    """bcrypt check through the authenticator's controller (sets the same session keys)."""
    controller = AuthenticationController(config.fresh_credentials(), auto_hash=False)
    try:
        return bool(controller.login(username, password))
    except LoginError:
        return False


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
    actor = session_actor(config)
    if actor is not None:
        return actor

    _clear_after_logout()
    authenticator = None  # rendered only for a session being logged in (see the module doc)
    if _valid_cookie_token(config) is not None:
        authenticator = _make_authenticator(config)
        try:
            authenticator.login(location="unrendered")  # re-login from the valid signed cookie
        except LoginError:
            pass  # a cookie for a user that no longer exists: ask for the password
        actor = session_actor(config)
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
                st.info(f"**Demo mode** (`{DEMO_ENV}=1`): log in as {users}, each with the password "
                        f"`{DEMO_PASSWORD}`. Do not use demo mode for real data.", icon=":material/science:")
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
        ok = _check_password(config, username, password)
        actor = session_actor(config) if ok else None
        if actor is not None:
            throttle.record_success(username, sid)
            form_area.empty()
            if authenticator is None:
                authenticator = _make_authenticator(config)
            authenticator.cookie_controller.set_cookie()
            return actor
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


def logout_button(container=None) -> None:
    """A logout button; on click clears the session's login and deletes the cookie."""
    target = container if container is not None else st.sidebar
    if not target.button("Log out", key="logout_button", icon=":material/logout:", width="stretch"):
        return
    authenticator = st.session_state.get(AUTHENTICATOR_KEY)
    if authenticator is not None and st.session_state.get("authentication_status"):
        with target:
            authenticator.logout(location="unrendered")  # also deletes the signed cookie
    for key in _AUTH_SESSION_KEYS:
        st.session_state[key] = None
    st.session_state["logout"] = True
    st.session_state[_CLEAR_KEY] = True  # the next run drops the rest of this user's session state
    st.success("You are logged out.")
    st.button("Log in again", key="login_again", type="primary")
    st.stop()
