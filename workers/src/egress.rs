//! The HTTP client webhook deliveries leave by, and the one place that decides which
//! addresses it may connect to ([`webhooks::address`]). Names are resolved here, with
//! tokio's `lookup_host`, and internal addresses are dropped from the answer before
//! reqwest connects, so a name an admin registered cannot reach loopback, the internal
//! network or the metadata service, also when its DNS answer changes after
//! registration (DNS rebinding): what is checked is what is connected to. IP literals
//! never reach a resolver; [`check_url`] refuses the internal ones before sending.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use webhooks::{NetworkPolicy, NotAllowed};

/// Resolves names to the addresses the policy allows, failing with [`NotAllowed`] when
/// none is left.
#[derive(Debug, Clone, Copy)]
struct FilteringResolver {
    networks: NetworkPolicy,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let networks = self.networks;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = allowed(networks, resolved);
            if allowed.is_empty() {
                return Err(Box::new(NotAllowed { host }) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses of `resolved` that `networks` allows, in their order.
fn allowed(networks: NetworkPolicy, resolved: Vec<SocketAddr>) -> Vec<SocketAddr> {
    resolved
        .into_iter()
        .filter(|address| networks.allows(address.ip()))
        .collect()
}

/// The client of every delivery: a deadline of `timeout` per attempt, no redirects
/// (they would send the signed event somewhere the admin did not register), and names
/// resolved through the policy's filter. While only public addresses are allowed no
/// proxy is used, not even one from `HTTP_PROXY`/`HTTPS_PROXY`: a proxy would connect
/// for us, to addresses this process never sees.
pub fn client(networks: NetworkPolicy, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cqrs-backend-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(FilteringResolver { networks }));
    match networks {
        NetworkPolicy::PublicOnly => builder.no_proxy(),
        NetworkPolicy::AllowPrivate => builder,
    }
    .build()
}

/// Refuses a URL whose host is an internal IP literal or `localhost`, before sending
/// (the resolver never sees IP literals). A URL that does not parse is left to reqwest.
pub fn check_url(networks: NetworkPolicy, url: &str) -> Result<(), NotAllowed> {
    match reqwest::Url::parse(url) {
        Ok(url) => networks.check_url(&url),
        Err(_) => Ok(()),
    }
}

/// The refusal behind a failed request, when the resolver refused its host.
pub fn refusal(error: &reqwest::Error) -> Option<&NotAllowed> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<NotAllowed>() {
            return Some(refused);
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| a.parse().expect("a socket address"))
            .collect()
    }

    #[test]
    fn internal_addresses_are_dropped_from_an_answer_and_public_ones_kept_in_order() {
        let resolved = addresses(&[
            "127.0.0.1:0",
            "93.184.216.34:0",
            "10.0.0.7:0",
            "[2606:2800:220:1::]:0",
            "[fe80::1]:0",
            "169.254.169.254:0",
        ]);
        assert_eq!(
            allowed(NetworkPolicy::PublicOnly, resolved.clone()),
            addresses(&["93.184.216.34:0", "[2606:2800:220:1::]:0"])
        );
        assert_eq!(allowed(NetworkPolicy::AllowPrivate, resolved.clone()), resolved);
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_refused_with_the_reason() {
        let resolver = FilteringResolver {
            networks: NetworkPolicy::PublicOnly,
        };
        let name: Name = "localhost".parse().expect("a name");
        let error = match resolver.resolve(name).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error,
        };
        let refused = error
            .downcast_ref::<NotAllowed>()
            .expect("refused, not a lookup failure");
        assert_eq!(refused.host, "localhost");
        assert!(error.to_string().starts_with("address not allowed"), "{error}");

        let open = FilteringResolver {
            networks: NetworkPolicy::AllowPrivate,
        };
        let name: Name = "localhost".parse().expect("a name");
        let addrs: Vec<SocketAddr> = open.resolve(name).await.expect("resolved").collect();
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty(),
            "{addrs:?}"
        );
    }

    #[tokio::test]
    async fn a_request_refused_by_the_resolver_says_so() {
        let client = client(NetworkPolicy::PublicOnly, Duration::from_secs(2)).expect("client");
        let error = client
            .post("http://localhost:9/")
            .send()
            .await
            .expect_err("refused");
        let refused = refusal(&error).expect("the refusal is found behind the connect error");
        assert_eq!(refused.host, "localhost");
    }

    #[test]
    fn internal_ip_literals_are_refused_before_sending() {
        assert!(check_url(NetworkPolicy::PublicOnly, "http://169.254.169.254/latest").is_err());
        assert!(check_url(NetworkPolicy::PublicOnly, "http://[::1]:8080/").is_err());
        assert!(check_url(NetworkPolicy::PublicOnly, "https://example.com/").is_ok());
        assert!(check_url(NetworkPolicy::AllowPrivate, "http://127.0.0.1:1/").is_ok());
    }
}
