//! The review decider, given / when / then: given the events so far, when a command
//! arrives, then these events (or this refusal).

use domain::review::{
    Comment, Eligibility, Rating, ReviewAggregate, ReviewCommand, ReviewError, ReviewEvent, ReviewState,
};
use domain::{Decider, DomainEvent};
use serde_json::json;
use uuid::Uuid;

fn given(events: &[ReviewEvent]) -> ReviewState {
    ReviewAggregate::fold(ReviewState::default(), events)
}

fn when(state: &ReviewState, command: ReviewCommand) -> Result<Vec<ReviewEvent>, ReviewError> {
    ReviewAggregate::decide(&command, state)
}

fn rating(n: i64) -> Rating {
    Rating::parse(n).expect("rating")
}

const BUYER: Eligibility = Eligibility {
    product_exists: true,
    purchased: true,
};

fn written(product_id: Uuid, author_id: Uuid) -> ReviewEvent {
    ReviewEvent::Written {
        product_id,
        author_id,
        rating: rating(4),
        comment: Comment::parse("Good").expect("comment"),
    }
}

fn write(product_id: Uuid, author_id: Uuid, eligibility: Eligibility) -> ReviewCommand {
    ReviewCommand::Write {
        product_id,
        author_id,
        rating: rating(4),
        comment: Comment::parse("Good").expect("comment"),
        eligibility,
    }
}

#[test]
fn a_buyer_writes_a_review_of_a_product() {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(
        when(&given(&[]), write(product, author, BUYER)),
        Ok(vec![written(product, author)])
    );
}

#[test]
fn only_buyers_of_existing_products_may_review_them() {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    let not_bought = Eligibility {
        product_exists: true,
        purchased: false,
    };
    let no_product = Eligibility {
        product_exists: false,
        purchased: false,
    };
    assert_eq!(
        when(&given(&[]), write(product, author, not_bought)),
        Err(ReviewError::NotPurchased)
    );
    assert_eq!(
        when(&given(&[]), write(product, author, no_product)),
        Err(ReviewError::ProductNotFound)
    );
    assert_eq!(
        when(&given(&[written(product, author)]), write(product, author, BUYER)),
        Err(ReviewError::AlreadyExists)
    );
}

#[test]
fn the_author_edits_and_an_edit_that_changes_nothing_emits_nothing() {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    let state = given(&[written(product, author)]);
    let edit = |editor, stars: Option<i64>, comment: Option<Option<Comment>>| ReviewCommand::Edit {
        editor_id: editor,
        rating: stars.map(rating),
        comment,
    };
    assert_eq!(
        when(&state, edit(author, Some(2), Some(None))),
        Ok(vec![ReviewEvent::Edited {
            product_id: product,
            rating: rating(2),
            comment: None
        }])
    );
    assert_eq!(when(&state, edit(author, Some(4), None)), Ok(vec![]));
    assert_eq!(
        when(&state, edit(Uuid::now_v7(), Some(1), None)),
        Err(ReviewError::Forbidden)
    );
}

#[test]
fn the_author_or_an_admin_deletes_and_then_nothing_applies() {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    let state = given(&[written(product, author)]);
    let stranger = ReviewCommand::Delete {
        by: Uuid::now_v7(),
        admin: false,
    };
    let admin = ReviewCommand::Delete {
        by: Uuid::now_v7(),
        admin: true,
    };
    assert_eq!(when(&state, stranger), Err(ReviewError::Forbidden));
    let deleted = when(&state, admin).expect("admin deletes");
    assert_eq!(deleted, vec![ReviewEvent::Deleted { product_id: product }]);
    let state = given(&[written(product, author), deleted[0].clone()]);
    assert_eq!(state, ReviewState::Deleted);
    assert_eq!(
        when(
            &state,
            ReviewCommand::Delete {
                by: author,
                admin: false
            }
        ),
        Err(ReviewError::NotFound)
    );
}

#[test]
fn ratings_and_comments_are_bounded() {
    assert!(Rating::parse(0).is_err() && Rating::parse(6).is_err() && Rating::parse(5).is_ok());
    assert!(Comment::parse(&"x".repeat(2001)).is_err());
    assert!(
        Comment::parse(&"é".repeat(2000))
            .expect("2000 characters")
            .is_some()
    );
    assert_eq!(Comment::parse("   ").expect("blank"), None);
    assert!(Comment::parse("bell\u{7}").is_err());
}

#[test]
fn events_round_trip_through_their_declared_stored_form() {
    let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
    let event = written(product, author);
    assert_eq!(event.event_type(), "review.written");
    assert_eq!(event.schema_version(), 1);
    assert_eq!(
        event.to_data(),
        json!({"productId": product, "authorId": author, "rating": 4, "comment": "Good"})
    );
    let back = ReviewEvent::from_stored("review.written", 1, &event.to_data());
    assert_eq!(back, Ok(event.clone()));
    assert!(ReviewEvent::from_stored("review.written", 2, &event.to_data()).is_err());
    assert!(ReviewEvent::from_stored("review.exploded", 1, &json!({})).is_err());
    let mut extra = event.to_data();
    extra["secret"] = json!(1);
    assert!(ReviewEvent::from_stored("review.written", 1, &extra).is_err());
    assert_eq!(
        ReviewEvent::Deleted { product_id: product }.to_data(),
        json!({"productId": product})
    );
}
