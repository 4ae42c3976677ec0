"""Who may do what: bcrypt credentials, the start-up auth configuration, login throttling."""
from core.auth.credentials import (COOKIE_EXPIRY_DAYS, COOKIE_KEY_ENV, COOKIE_NAME, CREDENTIALS_ENV, DEMO_ENV,
                                   DEMO_PASSWORD, DEMO_USERS, LOCKOUT_ENV, MAX_FAILURES_ENV, AuthConfig,
                                   AuthConfigError, LoginLocked, LoginThrottle, actor_for, add_user, add_user_to_file,
                                   credentials_path, demo_credentials, demo_mode, hash_password, list_users, load_auth_config,
                                   load_credentials_file, save_credentials_file,
                                   verify_password)

__all__ = ["COOKIE_EXPIRY_DAYS", "COOKIE_KEY_ENV", "COOKIE_NAME", "CREDENTIALS_ENV", "DEMO_ENV", "DEMO_PASSWORD",
           "DEMO_USERS", "LOCKOUT_ENV", "MAX_FAILURES_ENV", "AuthConfig", "AuthConfigError", "LoginLocked",
           "LoginThrottle", "actor_for", "add_user", "add_user_to_file", "credentials_path", "demo_credentials", "demo_mode",
           "hash_password", "list_users", "load_auth_config", "load_credentials_file", "save_credentials_file", "verify_password"]
