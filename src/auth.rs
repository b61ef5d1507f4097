//! Player authentication: HS256 JSON Web Tokens that carry the player id (`sub`, a UUID)
//! and an expiry (`exp`, unix seconds), checked once, at the WebSocket upgrade.
//!
//! The token comes from `Authorization: Bearer <token>` or, for clients that cannot set
//! headers on a WebSocket (browsers), from a `token=<token>` query parameter; the header
//! wins when both are present. The expiry is compared with the [`Clock`](crate::clock::Clock)
//! seam's time, never with the wall clock: jsonwebtoken's own `exp` check is turned off, so
//! the simulation's clock (and its failures) governs expiry like everything else.
//!
//! In dev mode ([`AuthMode::Dev`](crate::config::AuthMode)) no token is asked for and any
//! token sent is ignored; the connection is bound to the player of its first `enqueue`.

use std::fmt;

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The shortest accepted shared secret: 256 bits, the HS256 key size RFC 7518 requires.
pub const MIN_SECRET_BYTES: usize = 32;

/// The query parameter that may carry the token.
const TOKEN_PARAM: &str = "token";

/// Longest token accepted; a real one is a few hundred bytes (hyper bounds the head anyway).
const MAX_TOKEN_BYTES: usize = 4_096;

/// The claims of a player token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The player id, a UUID in its hyphenated text form.
    pub sub: String,
    /// Expiry, unix seconds: the token is refused from this second on.
    pub exp: u64,
}

/// Who a connection acts for, as the upgrade established it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A verified token named this player; the connection acts for it alone.
    Player(Uuid),
    /// Dev mode: no token; the first `enqueue` binds the connection to its player.
    Anonymous,
}

/// Why an upgrade is refused with HTTP 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No token in the `Authorization` header nor in the query.
    Missing,
    /// The token is malformed, signed with another key or algorithm, or its `sub` is not
    /// a UUID.
    Invalid,
    /// The token's `exp` has passed.
    Expired,
}

impl AuthError {
    /// A short name, used as the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
        }
    }

    /// The body of the 401 response: short, and nothing about the key or the claims.
    pub fn body(self) -> &'static str {
        match self {
            Self::Missing => "a player token is required (Authorization: Bearer <token>)\n",
            Self::Invalid => "the player token is invalid\n",
            Self::Expired => "the player token has expired\n",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("the secret must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret,
    /// The signing library failed.
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

/// Checks player tokens against the shared secret.
pub struct Verifier {
    /// The HMAC key; `None` when no usable secret is configured, and then every token is
    /// refused (fail closed) - a validated config never gets there.
    key: Option<DecodingKey>,
    /// HS256 only, `sub` and `exp` required, jsonwebtoken's clock checks off.
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("has_key", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `secret`; a missing or short secret refuses every token.
    pub fn new(secret: Option<&str>) -> Self {
        let key = secret
            .filter(|secret| secret.len() >= MIN_SECRET_BYTES)
            .map(|secret| DecodingKey::from_secret(secret.as_bytes()));
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the Clock seam below; the library would read the
        // system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { key, validation }
    }

    /// The player the token names, if its signature holds and `now_unix_ms` is before its
    /// expiry.
    pub fn verify(&self, token: &str, now_unix_ms: u64) -> Result<Uuid, AuthError> {
        let key = self.key.as_ref().ok_or(AuthError::Invalid)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|_| AuthError::Invalid)?;
        let player = Uuid::parse_str(&data.claims.sub).map_err(|_| AuthError::Invalid)?;
        if now_unix_ms / 1_000 >= data.claims.exp {
            return Err(AuthError::Expired);
        }
        Ok(player)
    }
}

/// Mints a token for `player`, valid until `exp_unix_s`, signed with `secret`.
pub fn mint(secret: &str, player: Uuid, exp_unix_s: u64) -> Result<String, MintError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(MintError::ShortSecret);
    }
    let claims = Claims {
        sub: player.to_string(),
        exp: exp_unix_s,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|error| MintError::Sign(error.to_string()))
}

/// The token of a request: `Authorization: Bearer <token>` (scheme case-insensitive),
/// else the `token` query parameter; `None` when neither holds a non-empty token.
pub fn token_of<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let from_header = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty());
    from_header.or_else(|| {
        query?
            .split('&')
            .find_map(|pair| pair.strip_prefix(TOKEN_PARAM)?.strip_prefix('='))
            .filter(|token| !token.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    const SECRET: &str = "unit-test-secret-unit-test-secret-0123456789";
    const PLAYER: Uuid = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);
    /// 2030-01-01T00:00:00Z.
    const EXP_S: u64 = 1_893_456_000;

    /// Goal: a minted token verifies to its player until the second of its expiry, from
    /// which it is `Expired`.
    #[test]
    fn minted_token_verifies_until_its_expiry() {
        let token = mint(SECRET, PLAYER, EXP_S).unwrap();
        let verifier = Verifier::new(Some(SECRET));
        assert_eq!(verifier.verify(&token, EXP_S * 1_000 - 1), Ok(PLAYER));
        assert_eq!(
            verifier.verify(&token, EXP_S * 1_000),
            Err(AuthError::Expired)
        );
    }

    /// Goal: another key, a tampered payload, another algorithm, a non-UUID `sub`, a missing
    /// claim and garbage are all `Invalid`; so is everything without a usable secret.
    #[test]
    fn forged_and_malformed_tokens_are_invalid() {
        let verifier = Verifier::new(Some(SECRET));
        let now_ms = 1_000;
        let other_key = mint("another-secret-another-secret-0123456789", PLAYER, EXP_S).unwrap();
        let good = mint(SECRET, PLAYER, EXP_S).unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let other_claims = mint(SECRET, Uuid::nil(), EXP_S + 1).unwrap();
        parts[1] = other_claims.split('.').nth(1).unwrap();
        let tampered = parts.join(".");
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                sub: PLAYER.to_string(),
                exp: EXP_S,
            },
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let bad_sub = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({ "sub": "bob", "exp": EXP_S }),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({ "sub": PLAYER }),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        for token in [
            other_key.as_str(),
            &tampered,
            &hs512,
            &bad_sub,
            &no_exp,
            "not.a.jwt",
            "",
        ] {
            assert_eq!(
                verifier.verify(token, now_ms),
                Err(AuthError::Invalid),
                "{token}"
            );
        }
        for unusable in [None, Some("short")] {
            assert_eq!(
                Verifier::new(unusable).verify(&good, now_ms),
                Err(AuthError::Invalid)
            );
        }
    }

    /// Goal: a secret shorter than 32 bytes mints nothing.
    #[test]
    fn short_secret_mints_nothing() {
        assert!(matches!(
            mint("short", PLAYER, EXP_S),
            Err(MintError::ShortSecret)
        ));
    }

    /// Goal: the token is found in the bearer header (any case of the scheme) or in the
    /// `token` query parameter, the header first; other schemes and empty values are none.
    #[test]
    fn token_comes_from_the_header_or_the_query() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            map
        };
        let none = HeaderMap::new();
        assert_eq!(token_of(&headers("Bearer abc"), None), Some("abc"));
        assert_eq!(token_of(&headers("bearer  abc "), None), Some("abc"));
        assert_eq!(token_of(&headers("Basic abc"), None), None);
        assert_eq!(token_of(&headers("Bearer "), None), None);
        assert_eq!(token_of(&none, Some("a=1&token=xyz&b=2")), Some("xyz"));
        assert_eq!(token_of(&none, Some("tokens=xyz")), None);
        assert_eq!(token_of(&none, Some("token=")), None);
        assert_eq!(token_of(&headers("Bearer h"), Some("token=q")), Some("h"));
        assert_eq!(token_of(&none, None), None);
    }
}
