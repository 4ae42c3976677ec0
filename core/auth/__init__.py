"""Who may do what: bcrypt credentials, the start-up auth configuration, log-in sessions, throttling."""
from core.auth.config import AuthConfig, load_auth_config
from core.auth.credentials import (DEMO_PASSWORD, DEMO_USERS, actor_for, add_user, add_user_to_file, demo_credentials,
                                   hash_password, list_users, load_credentials_file, save_credentials_file,
                                   verify_password)
from core.auth.sessions import (REVOKED_ENV, RevocationList, check_login, issue_cookie_token, revocations_path,
                                token_version, verify_cookie_token)
from core.auth.settings import (BIND_ENV, COOKIE_EXPIRY_DAYS, COOKIE_KEY_ENV, COOKIE_NAME, CREDENTIALS_ENV, DEMO_ENV,
                                AuthConfigError, credentials_path, demo_mode, is_loopback)
from core.auth.throttle import LOCKOUT_ENV, MAX_FAILURES_ENV, LoginLocked, LoginThrottle

__all__ = ["BIND_ENV", "COOKIE_EXPIRY_DAYS", "COOKIE_KEY_ENV", "COOKIE_NAME", "CREDENTIALS_ENV", "DEMO_ENV",
           "DEMO_PASSWORD", "DEMO_USERS", "LOCKOUT_ENV", "MAX_FAILURES_ENV", "REVOKED_ENV", "AuthConfig",
           "AuthConfigError", "LoginLocked", "LoginThrottle", "RevocationList", "actor_for", "add_user",
           "add_user_to_file", "check_login", "credentials_path", "demo_credentials", "demo_mode", "hash_password",
           "is_loopback", "issue_cookie_token", "list_users", "load_auth_config", "load_credentials_file",
           "revocations_path", "save_credentials_file", "token_version", "verify_cookie_token", "verify_password"]
