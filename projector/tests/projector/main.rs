//! Integration tests of the projector against the real Postgres, NATS and Redis.

mod batch;
mod crash;
mod delivery;
mod documents;
mod generations;
mod http;
mod live;
mod rebuild;
mod redis_outage;
mod scripts;
mod shop;
mod shop_rebuild;
mod shop_scripts;
mod shop_support;
mod support;
