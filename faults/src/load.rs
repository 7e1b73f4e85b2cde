//! The mixed load: an admin creating products, and users who register, log in, rename
//! themselves, order, cancel and read users, products, best sellers and orders.

use crate::client::{Answer, Api, Request, Side};
use crate::history::Expect;
use crate::stack::{ADMIN_EMAIL, ADMIN_PASSWORD};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// What the load tasks share.
pub struct Load {
    /// The client.
    pub api: Api,
    /// Set to stop every task.
    pub stop: AtomicBool,
    /// Products created so far.
    products: Mutex<Vec<String>>,
    /// How many products the admin creates.
    product_target: usize,
    /// Pause between two requests of one task.
    pause: Duration,
}

fn id_of(body: &Value) -> Option<Uuid> {
    body["data"]["id"].as_str().and_then(|s| Uuid::parse_str(s).ok())
}

fn expect_one(main: &'static str) -> impl Fn(&Value) -> Option<Expect> {
    move |body| {
        Some(Expect {
            stream: id_of(body)?,
            main,
            others: Vec::new(),
        })
    }
}

fn expect_with(main: &'static str, other: &'static str, lines: usize) -> impl Fn(&Value) -> Option<Expect> {
    move |body| {
        Some(Expect {
            stream: id_of(body)?,
            main,
            others: vec![(other, lines)],
        })
    }
}

impl Load {
    /// A load over `api`.
    pub fn new(api: Api, product_target: usize, pause: Duration) -> Arc<Self> {
        Arc::new(Self {
            api,
            stop: AtomicBool::new(false),
            products: Mutex::default(),
            product_target,
            pause,
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn pause(&self, rng: &mut StdRng) {
        let jitter = rng.random_range(0..=self.pause.as_millis() as u64);
        tokio::time::sleep(self.pause / 2 + Duration::from_millis(jitter)).await;
    }

    fn random_product(&self, rng: &mut StdRng) -> Option<String> {
        let products = self.products.lock().unwrap_or_else(|e| e.into_inner());
        (!products.is_empty()).then(|| products[rng.random_range(0..products.len())].clone())
    }

    async fn login(&self, email: &str, password: &str) -> Option<(String, String)> {
        let answer = self
            .api
            .send(
                Request {
                    side: Side::Command,
                    method: "POST",
                    route: "/api/v1/auth/login",
                    path: "/api/v1/auth/login".into(),
                    token: None,
                    body: Some(json!({"email": email, "password": password})),
                    key: None,
                },
                None,
            )
            .await;
        let token = answer.body["data"]["accessToken"].as_str()?.to_owned();
        let id = answer.body["data"]["user"]["id"].as_str()?.to_owned();
        Some((token, id))
    }

    /// The admin: creates products (a few with little stock, so orders also meet 422).
    pub async fn run_admin(self: Arc<Self>) {
        let mut rng = StdRng::from_os_rng();
        let mut token = None;
        let mut created = 0usize;
        while !self.stopped() {
            self.pause(&mut rng).await;
            let Some(admin) = &token else {
                token = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.map(|t| t.0);
                continue;
            };
            if created >= self.product_target {
                self.read(&mut rng, admin, None, &[]).await;
                continue;
            }
            let stock = if created % 3 == 2 { 5 } else { 100_000 };
            let sku = format!("F-{}", Uuid::new_v4().simple());
            let body = json!({"sku": sku, "name": format!("Product {created}"), "description": "fault suite",
                              "priceCents": 100 + created as i64, "currency": "EUR", "stock": stock});
            let request = Request {
                side: Side::Command,
                method: "POST",
                route: "/api/v1/products",
                path: "/api/v1/products".into(),
                token: Some(admin),
                body: Some(body),
                key: None,
            };
            let answer = self.api.send_keyed(request, &expect_one("product.created")).await;
            if answer.status == 401 {
                token = None;
            }
            if let Some(id) = answer.data_str("id").filter(|_| answer.ok()) {
                self.products.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                created += 1;
            }
        }
    }

    /// One user after another: each registers, logs in, then acts until the run stops.
    pub async fn run_user(self: Arc<Self>, task: usize) {
        let mut rng = StdRng::from_os_rng();
        let mut serial = 0usize;
        while !self.stopped() {
            serial += 1;
            let email = format!(
                "u{task}-{serial}-{}@faults.example.com",
                &Uuid::new_v4().simple().to_string()[..6]
            );
            let password = "passw0rd-faults";
            let register = Request {
                side: Side::Command,
                method: "POST",
                route: "/api/v1/auth/register",
                path: "/api/v1/auth/register".into(),
                token: None,
                body: Some(
                    json!({"email": email, "name": format!("User {task}-{serial}"), "password": password}),
                ),
                key: None,
            };
            let answer = self
                .api
                .send_keyed(register, &expect_one("user.registered"))
                .await;
            if !answer.ok() {
                self.pause(&mut rng).await;
                continue;
            }
            let mut session = None;
            while session.is_none() && !self.stopped() {
                session = self.login(&email, password).await;
                self.pause(&mut rng).await;
            }
            let Some((token, id)) = session else { return };
            // A user lives for a while, then the task registers a new one.
            let mut orders: Vec<(String, usize)> = Vec::new();
            for step in 0..rng.random_range(20..60) {
                if self.stopped() {
                    return;
                }
                self.pause(&mut rng).await;
                match rng.random_range(0..10) {
                    0 => self.rename(&token, &id, step).await,
                    1 | 2 => {
                        if let Some(order) = self.order(&mut rng, &token, &id).await {
                            orders.push(order);
                        }
                    }
                    3 if !orders.is_empty() => {
                        let (order, lines) = orders.swap_remove(rng.random_range(0..orders.len()));
                        self.cancel(&token, &order, lines).await;
                    }
                    _ => {
                        let known: Vec<&str> = orders.iter().map(|(o, _)| o.as_str()).collect();
                        self.read(&mut rng, &token, Some(&id), &known).await;
                    }
                }
            }
        }
    }

    async fn rename(&self, token: &str, id: &str, step: usize) {
        let request = Request {
            side: Side::Command,
            method: "PATCH",
            route: "/api/v1/users/{id}",
            path: format!("/api/v1/users/{id}"),
            token: Some(token),
            body: Some(json!({"name": format!("Renamed {} {step}", &id[..8])})),
            key: None,
        };
        self.api.send(request, Some(&expect_one("user.renamed"))).await;
    }

    async fn order(&self, rng: &mut StdRng, token: &str, id: &str) -> Option<(String, usize)> {
        let first = self.random_product(rng)?;
        let mut items = vec![json!({"productId": first, "quantity": rng.random_range(1..4)})];
        if let Some(second) = self
            .random_product(rng)
            .filter(|p| *p != first && rng.random_bool(0.4))
        {
            items.push(json!({"productId": second, "quantity": 1}));
        }
        let lines = items.len();
        let request = Request {
            side: Side::Command,
            method: "POST",
            route: "/api/v1/users/{id}/orders",
            path: format!("/api/v1/users/{id}/orders"),
            token: Some(token),
            body: Some(json!({"items": items})),
            key: None,
        };
        let expect = expect_with("order.placed", "product.stock_reserved", lines);
        let answer = self.api.send_keyed(request, &expect).await;
        answer
            .data_str("id")
            .filter(|_| answer.ok())
            .map(|order| (order, lines))
    }

    async fn cancel(&self, token: &str, order: &str, lines: usize) -> Answer {
        let request = Request {
            side: Side::Command,
            method: "POST",
            route: "/api/v1/orders/{id}/cancel",
            path: format!("/api/v1/orders/{order}/cancel"),
            token: Some(token),
            body: None,
            key: None,
        };
        let expect = expect_with("order.cancelled", "product.stock_released", lines);
        self.api.send(request, Some(&expect)).await
    }

    async fn read(&self, rng: &mut StdRng, token: &str, user: Option<&str>, orders: &[&str]) {
        let product = self.random_product(rng);
        let (route, path, auth): (&'static str, String, bool) = match rng.random_range(0..7) {
            0 => ("/api/v1/me", "/api/v1/me".into(), true),
            1 if user.is_some() => (
                "/api/v1/users/{id}",
                format!("/api/v1/users/{}", user.unwrap_or_default()),
                true,
            ),
            2 => ("/api/v1/products", "/api/v1/products?perPage=20".into(), false),
            3 if product.is_some() => (
                "/api/v1/products/{id}",
                format!("/api/v1/products/{}", product.unwrap_or_default()),
                false,
            ),
            4 if user.is_some() => (
                "/api/v1/users/{id}/orders",
                format!("/api/v1/users/{}/orders", user.unwrap_or_default()),
                true,
            ),
            5 if !orders.is_empty() => (
                "/api/v1/orders/{id}",
                format!("/api/v1/orders/{}", orders[rng.random_range(0..orders.len())]),
                true,
            ),
            _ => (
                "/api/v1/products/top",
                "/api/v1/products/top?limit=10".into(),
                false,
            ),
        };
        let request = Request {
            side: Side::Query,
            method: "GET",
            route,
            path,
            token: auth.then_some(token),
            body: None,
            key: None,
        };
        self.api.send(request, None).await;
    }
}
