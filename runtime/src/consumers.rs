//! The state of a durable JetStream consumer as Prometheus gauges, for every service that
//! runs consumers (the projector's projections, the workers' effects).

use async_nats::jetstream::consumer::Info;

/// Sets the `jetstream_consumer_*` gauges of one consumer from its info.
pub fn record_consumer(info: &Info) {
    let consumer = info.name.clone();
    metrics::gauge!("jetstream_consumer_pending", "consumer" => consumer.clone())
        .set(info.num_pending as f64);
    metrics::gauge!("jetstream_consumer_ack_pending", "consumer" => consumer.clone())
        .set(info.num_ack_pending as f64);
    metrics::gauge!("jetstream_consumer_redelivered", "consumer" => consumer)
        .set(info.num_redelivered as f64);
}
