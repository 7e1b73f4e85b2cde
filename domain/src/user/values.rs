//! Validated values of the user aggregate: once constructed, always valid.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused; the message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub &'static str);

/// A syntactically valid email address, stored lower-cased so that uniqueness is
/// case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Longest address accepted (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Parses and normalises (trims, lower-cases) an address.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(ValueError("must not be empty"));
        }
        if email.len() > Self::MAX_LEN {
            return Err(ValueError("must be at most 254 characters"));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(ValueError("must be a valid email address"));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && domain.len() <= 253
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(email))
        } else {
            Err(ValueError("must be a valid email address"))
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    /// Longest name accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses a name, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValueError("must not be empty"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ValueError("must be at most 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(ValueError("must not contain control characters"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plain-text password that meets the policy: 8 to 128 characters with at least one
/// letter and one digit. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Shortest password accepted, in characters.
    pub const MIN_CHARS: usize = 8;
    /// Longest password accepted, in characters (bounds hashing work).
    pub const MAX_CHARS: usize = 128;

    /// Checks the policy.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(ValueError("must be at least 8 characters"));
        }
        if chars > Self::MAX_CHARS {
            return Err(ValueError("must be at most 128 characters"));
        }
        if !raw.chars().any(char::is_alphabetic) {
            return Err(ValueError("must contain a letter"));
        }
        if !raw.chars().any(|c| c.is_ascii_digit()) {
            return Err(ValueError("must contain a digit"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A regular user: sees and changes only their own data.
    User,
    /// An administrator: sees and changes every user.
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Parses the wire name.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        match raw {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            _ => Err(ValueError("must be one of: user, admin")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_to_lower_case() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").map(|e| e.0),
            Ok("alice@example.com".into())
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "a@@b.com",
            "a..b@x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn password_policy_needs_length_letter_and_digit() {
        assert!(Password::parse("short1").is_err());
        assert!(Password::parse("onlyletters").is_err());
        assert!(Password::parse("12345678").is_err());
        assert!(Password::parse(&format!("a1{}", "x".repeat(127))).is_err());
        assert!(Password::parse("correct horse 9").is_ok());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada ").map(|n| n.0), Ok("Ada".into()));
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
        assert!(UserName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn password_debug_hides_the_secret() {
        let p = Password::parse("secret123").expect("valid");
        assert!(!format!("{p:?}").contains("secret123"));
    }
}
