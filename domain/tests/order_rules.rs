//! given(events).when(command).then(events | error) for every order rule.

use domain::DomainEvent;
use domain::money::Currency;
use domain::order::{OrderCommand, OrderError, OrderEvent, OrderLine, OrderState, decide, evolve};
use uuid::Uuid;

fn line(quantity: i64, price: i64) -> OrderLine {
    OrderLine {
        product_id: Uuid::now_v7(),
        sku: "MUG-1".into(),
        name: "Mug".into(),
        quantity,
        unit_price_cents: price,
        line_total_cents: 0,
    }
}

fn eur() -> Currency {
    Currency::parse("EUR").expect("currency")
}

fn then(given: &[OrderEvent], when: OrderCommand, expected: Result<Vec<OrderEvent>, OrderError>) {
    let state = given.iter().fold(OrderState::New, evolve);
    assert_eq!(decide(&when, &state), expected);
}

#[test]
fn placing_prices_each_line_and_totals_the_order() {
    let user = Uuid::now_v7();
    let (a, b) = (line(2, 1250), line(1, 300));
    let events = decide(
        &OrderCommand::Place {
            user_id: user,
            lines: vec![a.clone(), b.clone()],
            currency: eur(),
        },
        &OrderState::New,
    )
    .expect("placed");
    let OrderEvent::Placed {
        lines, total_cents, ..
    } = &events[0]
    else {
        panic!("placed")
    };
    assert_eq!(lines[0].line_total_cents, 2500);
    assert_eq!(lines[1].line_total_cents, 300);
    assert_eq!(*total_cents, 2800);
}

#[test]
fn an_order_has_1_to_50_lines_of_1_to_1000_units_without_duplicates() {
    let user = Uuid::now_v7();
    let place = |lines: Vec<OrderLine>| OrderCommand::Place {
        user_id: user,
        lines,
        currency: eur(),
    };
    then(&[], place(vec![]), Err(OrderError::LineCount));
    then(
        &[],
        place((0..51).map(|_| line(1, 1)).collect()),
        Err(OrderError::LineCount),
    );
    then(&[], place(vec![line(0, 1)]), Err(OrderError::Quantity));
    then(&[], place(vec![line(1001, 1)]), Err(OrderError::Quantity));
    let twice = line(1, 1);
    then(
        &[],
        place(vec![twice.clone(), twice]),
        Err(OrderError::DuplicateProduct),
    );
}

#[test]
fn only_placed_orders_can_be_cancelled_once() {
    let placed = decide(
        &OrderCommand::Place {
            user_id: Uuid::now_v7(),
            lines: vec![line(1, 1)],
            currency: eur(),
        },
        &OrderState::New,
    )
    .expect("placed");
    then(&placed, OrderCommand::Cancel, Ok(vec![OrderEvent::Cancelled {}]));
    let mut cancelled = placed.clone();
    cancelled.push(OrderEvent::Cancelled {});
    then(&cancelled, OrderCommand::Cancel, Err(OrderError::NotCancellable));
    then(&[], OrderCommand::Cancel, Err(OrderError::NotFound));
    then(
        &placed,
        OrderCommand::Place {
            user_id: Uuid::now_v7(),
            lines: vec![line(1, 1)],
            currency: eur(),
        },
        Err(OrderError::AlreadyExists),
    );
}

#[test]
fn order_events_round_trip_through_their_stored_form() {
    let placed = decide(
        &OrderCommand::Place {
            user_id: Uuid::now_v7(),
            lines: vec![line(3, 99)],
            currency: eur(),
        },
        &OrderState::New,
    )
    .expect("placed");
    for event in placed.into_iter().chain([OrderEvent::Cancelled {}]) {
        let back = OrderEvent::from_stored(event.event_type(), event.schema_version(), &event.to_data());
        assert_eq!(back, Ok(event.clone()));
        assert!(OrderEvent::TYPES.contains(&(event.event_type(), 1)));
    }
}
