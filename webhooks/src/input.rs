//! What an admin may register: an absolute `http`/`https` URL without credentials, not
//! aimed at an internal address ([`crate::address`]), a set of known event types (or
//! `*`), an optional description. Each check answers a message for the field it is about.

use crate::address::NetworkPolicy;

/// The longest URL.
pub const MAX_URL: usize = 2048;
/// The most event types one endpoint takes.
pub const MAX_EVENT_TYPES: usize = 64;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 500;

/// A checked registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// The URL.
    pub url: String,
    /// The event types, without duplicates, in the order given.
    pub event_types: Vec<String>,
    /// The description.
    pub description: Option<String>,
}

/// A checked change: `None` leaves a field as it is; `description: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// A new URL.
    pub url: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// A new description, or none.
    pub description: Option<Option<String>>,
    /// Enable (clearing the reason it was disabled) or disable.
    pub enabled: Option<bool>,
}

/// A URL deliveries can be POSTed to; under [`NetworkPolicy::PublicOnly`] not one whose
/// host is an internal IP address or `localhost` (names are checked again, resolved,
/// at every delivery).
pub fn url(raw: &str, networks: NetworkPolicy) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.len() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} characters"));
    }
    let parsed = url::Url::parse(raw).map_err(|_| "must be an absolute http or https URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // They would be shown to every admin who lists the endpoints.
        return Err("must not carry a user name or password; the signature authenticates deliveries".into());
    }
    if parsed.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    if networks.check_url(&parsed).is_err() {
        return Err(
            "must not point at localhost or a loopback, private, link-local or other internal address".into(),
        );
    }
    Ok(parsed.to_string())
}

/// Event types of the catalogue, or `*` for all; at least one.
pub fn event_types(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Err("must name at least one event type, or \"*\" for all".into());
    }
    if raw.len() > MAX_EVENT_TYPES {
        return Err(format!("must name at most {MAX_EVENT_TYPES} event types"));
    }
    let known: Vec<&str> = domain::event::catalogue()
        .into_iter()
        .map(|(_, event_type, _)| event_type)
        .collect();
    let mut types: Vec<String> = Vec::with_capacity(raw.len());
    for event_type in raw {
        let event_type = event_type.trim();
        if event_type != "*" && !known.contains(&event_type) {
            let shown: String = event_type.chars().take(64).collect();
            return Err(format!(
                "unknown event type \"{shown}\"; the catalogue at /asyncapi.json lists them"
            ));
        }
        if !types.iter().any(|t| t == event_type) {
            types.push(event_type.to_owned());
        }
    }
    Ok(types)
}

/// A description: trimmed, empty means none.
pub fn description(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(format!("must be at most {MAX_DESCRIPTION} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(raw: &str) -> Result<String, String> {
        url(raw, NetworkPolicy::PublicOnly)
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert_eq!(
            public(" https://example.com/hooks ").as_deref(),
            Ok("https://example.com/hooks")
        );
        assert_eq!(
            url("http://127.0.0.1:9000/in?x=1", NetworkPolicy::AllowPrivate).as_deref(),
            Ok("http://127.0.0.1:9000/in?x=1")
        );
        for bad in [
            "",
            "example.com/x",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://e.com/#x",
            "javascript:alert(1)",
        ] {
            assert!(public(bad).is_err(), "{bad}");
            assert!(url(bad, NetworkPolicy::AllowPrivate).is_err(), "{bad}");
        }
        assert!(public(&format!("https://e.com/{}", "a".repeat(MAX_URL))).is_err());
    }

    #[test]
    fn urls_of_internal_hosts_are_refused_unless_private_networks_are_allowed() {
        for internal in [
            "http://127.0.0.1:9000/in",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/hooks",
            "http://[::1]:8080/",
            "http://localhost:3000/hooks",
        ] {
            let error = public(internal).expect_err(internal);
            assert!(error.contains("internal address"), "{error}");
            assert!(url(internal, NetworkPolicy::AllowPrivate).is_ok(), "{internal}");
        }
    }

    #[test]
    fn event_types_come_from_the_catalogue_once_each() {
        let raw = |types: &[&str]| types.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            event_types(&raw(&["order.placed", "order.placed", "user.registered"])),
            Ok(raw(&["order.placed", "user.registered"]))
        );
        assert_eq!(event_types(&raw(&["*"])), Ok(raw(&["*"])));
        assert!(event_types(&[]).is_err());
        let error = event_types(&raw(&["order.exploded"])).expect_err("unknown");
        assert!(error.contains("order.exploded"), "{error}");
    }

    #[test]
    fn descriptions_are_trimmed_bounded_and_printable() {
        assert_eq!(description(Some("  Billing  ")), Ok(Some("Billing".into())));
        assert_eq!(description(Some("   ")), Ok(None));
        assert_eq!(description(None), Ok(None));
        assert!(description(Some("a\u{0}b")).is_err());
        assert!(description(Some(&"x".repeat(MAX_DESCRIPTION + 1))).is_err());
    }
}
