"""Who may do what: bcrypt credentials, the start-up auth configuration, login throttling."""
from core.auth.config import AuthConfig, load_auth_config
from core.auth.credentials import (DEMO_PASSWORD, DEMO_USERS, actor_for, add_user, add_user_to_file, demo_credentials,
                                   hash_password, list_users, load_credentials_file, save_credentials_file,
                                   verify_password)
from core.auth.settings import (COOKIE_EXPIRY_DAYS, COOKIE_KEY_ENV, COOKIE_NAME, CREDENTIALS_ENV, DEMO_ENV,
                                AuthConfigError, credentials_path, demo_mode)
from core.auth.throttle import LOCKOUT_ENV, MAX_FAILURES_ENV, LoginLocked, LoginThrottle

__all__ = ["COOKIE_EXPIRY_DAYS", "COOKIE_KEY_ENV", "COOKIE_NAME", "CREDENTIALS_ENV", "DEMO_ENV", "DEMO_PASSWORD",
           "DEMO_USERS", "LOCKOUT_ENV", "MAX_FAILURES_ENV", "AuthConfig", "AuthConfigError", "LoginLocked",
           "LoginThrottle", "actor_for", "add_user", "add_user_to_file", "credentials_path", "demo_credentials", "demo_mode",
           "hash_password", "list_users", "load_auth_config", "load_credentials_file", "save_credentials_file", "verify_password"]
