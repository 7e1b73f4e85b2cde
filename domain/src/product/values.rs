//! Validated values of the product aggregate.

use crate::user::ValueError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A stock-keeping unit: 1 to 64 characters of letters, digits, `-`, `_` or `.`,
/// stored upper-case so that uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    /// Parses and normalises.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let sku = raw.trim().to_ascii_uppercase();
        if sku.is_empty() || sku.len() > 64 {
            return Err(ValueError("must be 1 to 64 characters"));
        }
        if !sku
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ValueError("may only contain letters, digits, '-', '_' and '.'"));
        }
        Ok(Self(sku))
    }

    /// The normalised SKU.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product name: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProductName(String);

impl ProductName {
    /// Parses a name, trimming white space.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValueError("must not be empty"));
        }
        if name.chars().count() > 200 {
            return Err(ValueError("must be at most 200 characters"));
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

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A description: up to 2000 characters (may be empty); line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    /// Parses a description.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let text = raw.trim();
        if text.chars().count() > 2000 {
            return Err(ValueError("must be at most 2000 characters"));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(ValueError("must not contain control characters"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_upper_cased_and_restricted() {
        assert_eq!(Sku::parse(" ab-12.x_ ").map(|s| s.0), Ok("AB-12.X_".into()));
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("a b").is_err());
        assert!(Sku::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn names_and_descriptions_are_bounded() {
        assert!(ProductName::parse(" ").is_err());
        assert!(ProductName::parse(&"n".repeat(201)).is_err());
        assert!(Description::parse("").is_ok());
        assert!(Description::parse("line\nbreak").is_ok());
        assert!(Description::parse(&"d".repeat(2001)).is_err());
    }
}
