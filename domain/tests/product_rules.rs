//! given(events).when(command).then(events | error) for every product rule.

use domain::DomainEvent;
use domain::money::{Cents, Currency};
use domain::product::{
    Description, ProductCommand, ProductError, ProductEvent, ProductName, ProductState, Sku, decide, evolve,
};
use uuid::Uuid;

fn created(stock: i64) -> ProductEvent {
    ProductEvent::Created {
        sku: Sku::parse("MUG-1").expect("sku"),
        name: ProductName::parse("Mug").expect("name"),
        description: Description::parse("A mug").expect("description"),
        price_cents: Cents::new(1250).expect("price"),
        currency: Currency::parse("EUR").expect("currency"),
        stock,
    }
}

fn then(given: &[ProductEvent], when: ProductCommand, expected: Result<Vec<ProductEvent>, ProductError>) {
    let state = given.iter().fold(ProductState::New, evolve);
    assert_eq!(decide(&when, &state), expected);
}

fn create(stock: i64) -> ProductCommand {
    let ProductEvent::Created {
        sku,
        name,
        description,
        price_cents,
        currency,
        ..
    } = created(0)
    else {
        unreachable!()
    };
    ProductCommand::Create {
        sku,
        name,
        description,
        price_cents,
        currency,
        stock,
    }
}

#[test]
fn creating_a_product_emits_created_and_needs_a_non_negative_stock() {
    then(&[], create(5), Ok(vec![created(5)]));
    then(&[], create(-1), Err(ProductError::InvalidQuantity));
    then(&[created(5)], create(5), Err(ProductError::AlreadyExists));
}

#[test]
fn updating_emits_only_the_fields_that_change() {
    let name = ProductName::parse("Big mug").expect("name");
    then(
        &[created(1)],
        ProductCommand::Update {
            name: Some(name.clone()),
            description: None,
            price_cents: Some(Cents::new(1250).expect("p")),
        },
        Ok(vec![ProductEvent::Updated {
            name: Some(name),
            description: None,
            price_cents: None,
        }]),
    );
    then(
        &[created(1)],
        ProductCommand::Update {
            name: None,
            description: None,
            price_cents: None,
        },
        Ok(vec![]),
    );
}

#[test]
fn restocking_adds_positive_quantities() {
    then(
        &[created(2)],
        ProductCommand::Restock { quantity: 3 },
        Ok(vec![ProductEvent::Restocked {
            quantity: 3,
            stock: 5,
        }]),
    );
    then(
        &[created(2)],
        ProductCommand::Restock { quantity: 0 },
        Err(ProductError::InvalidQuantity),
    );
}

#[test]
fn reserving_takes_stock_but_never_more_than_there_is() {
    let order = Uuid::now_v7();
    then(
        &[created(3)],
        ProductCommand::Reserve {
            order_id: order,
            quantity: 3,
        },
        Ok(vec![ProductEvent::StockReserved {
            order_id: order,
            quantity: 3,
            stock: 0,
        }]),
    );
    then(
        &[created(3)],
        ProductCommand::Reserve {
            order_id: order,
            quantity: 4,
        },
        Err(ProductError::InsufficientStock {
            available: 3,
            requested: 4,
        }),
    );
}

#[test]
fn releasing_gives_stock_back_even_when_retired() {
    let order = Uuid::now_v7();
    let reserved = ProductEvent::StockReserved {
        order_id: order,
        quantity: 2,
        stock: 1,
    };
    then(
        &[created(3), reserved.clone(), ProductEvent::Retired {}],
        ProductCommand::Release {
            order_id: order,
            quantity: 2,
        },
        Ok(vec![ProductEvent::StockReleased {
            order_id: order,
            quantity: 2,
            stock: 3,
        }]),
    );
}

#[test]
fn a_retired_product_cannot_be_ordered_restocked_or_changed() {
    let given = [created(3), ProductEvent::Retired {}];
    then(
        &given,
        ProductCommand::Reserve {
            order_id: Uuid::now_v7(),
            quantity: 1,
        },
        Err(ProductError::Retired),
    );
    then(
        &given,
        ProductCommand::Restock { quantity: 1 },
        Err(ProductError::Retired),
    );
    then(&given, ProductCommand::Retire, Err(ProductError::Retired));
}

#[test]
fn commands_on_unknown_products_are_not_found() {
    then(&[], ProductCommand::Retire, Err(ProductError::NotFound));
    then(
        &[],
        ProductCommand::Reserve {
            order_id: Uuid::now_v7(),
            quantity: 1,
        },
        Err(ProductError::NotFound),
    );
}

#[test]
fn every_product_event_round_trips_through_its_stored_form() {
    let order = Uuid::now_v7();
    for event in [
        created(4),
        ProductEvent::Updated {
            name: None,
            description: Some(Description::parse("x").expect("d")),
            price_cents: None,
        },
        ProductEvent::Restocked {
            quantity: 1,
            stock: 5,
        },
        ProductEvent::Retired {},
        ProductEvent::StockReserved {
            order_id: order,
            quantity: 1,
            stock: 4,
        },
        ProductEvent::StockReleased {
            order_id: order,
            quantity: 1,
            stock: 5,
        },
    ] {
        let back = ProductEvent::from_stored(event.event_type(), event.schema_version(), &event.to_data());
        assert_eq!(back, Ok(event.clone()));
        assert!(ProductEvent::TYPES.contains(&(event.event_type(), 1)));
    }
}
