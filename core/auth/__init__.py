"""Who may do what: bcrypt credentials, the start-up auth configuration, log-in sessions, throttling;
for the API, the token service (JWTs, refresh tokens, signing keys) and programs' API keys."""
from core.auth.api_keys import NewApiKey, check_api_key, create_api_key, list_api_keys, revoke_api_key
from core.auth.config import AuthConfig, check_api_credentials, load_auth_config
from core.auth.credentials import (DEMO_PASSWORD, DEMO_USERS, actor_for, add_user, add_user_to_file, demo_credentials,
                                   hash_password, list_users, load_credentials_file, save_credentials_file,
                                   verify_password)
from core.auth.sessions import (REVOKED_ENV, RevocationList, check_login, issue_cookie_token, revocations_path,
                                token_version, verify_cookie_token)
from core.auth.settings import (BIND_ENV, COOKIE_EXPIRY_DAYS, COOKIE_KEY_ENV, COOKIE_NAME, CREDENTIALS_ENV, DEMO_ENV,
                                AuthConfigError, credentials_path, demo_mode, is_loopback)
from core.auth.signing_keys import KeyRing, SigningKey
from core.auth.throttle import LOCKOUT_ENV, MAX_FAILURES_ENV, LoginLocked, LoginThrottle
from core.auth.token_subjects import CredentialsSource
from core.auth.tokens import (ACCESS_TTL_ENV, API_AUDIENCE, AUDIENCES, ISSUER_ENV, MCP_AUDIENCE, REFRESH_TTL_ENV,
                              TokenPair, TokenRefused, TokenService)

__all__ = ["BIND_ENV", "COOKIE_EXPIRY_DAYS", "COOKIE_KEY_ENV", "COOKIE_NAME", "CREDENTIALS_ENV", "DEMO_ENV",
           "DEMO_PASSWORD", "DEMO_USERS", "LOCKOUT_ENV", "MAX_FAILURES_ENV", "REVOKED_ENV", "AuthConfig",
           "AuthConfigError", "LoginLocked", "LoginThrottle", "RevocationList", "actor_for", "add_user",
           "add_user_to_file", "check_api_credentials", "check_login", "credentials_path", "demo_credentials",
           "demo_mode", "hash_password",
           "is_loopback", "issue_cookie_token", "list_users", "load_auth_config", "load_credentials_file",
           "revocations_path", "save_credentials_file", "token_version", "verify_cookie_token", "verify_password",
           # the API's tokens and keys
           "ACCESS_TTL_ENV", "API_AUDIENCE", "AUDIENCES", "ISSUER_ENV", "MCP_AUDIENCE", "REFRESH_TTL_ENV",
           "CredentialsSource", "KeyRing", "NewApiKey", "SigningKey", "TokenPair", "TokenRefused", "TokenService",
           "check_api_key", "create_api_key", "list_api_keys", "revoke_api_key"]
