//! End-to-end tests live in `tests/`: they start the `command-api`, `query-api`,
//! `projector` and `workers` binaries (built by `cargo test --workspace`) against the
//! real Postgres, NATS and Redis, with a real SMTP server inside the test.
