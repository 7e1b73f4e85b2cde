//! The review aggregate: a buyer's rating of a product (1 to 5) with an optional comment.
//! Only a user with a placed, not cancelled order of the product may write one; its
//! author may edit it; its author or an administrator may delete it. One review per
//! product and author is a unique claim the engine takes with `review.written`.

use crate::Decider;
use crate::user::ValueError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

crate::events! {
    /// Something that happened to a review: a public contract (JSON Schemas in
    /// `schemas/events/review.*.json`).
    pub enum ReviewEvent in "review", upcast = crate::event::current_only {
        /// `review.written` v1: a buyer reviewed a product.
        Written = "review.written" version 1 {
            /// The product.
            product_id: Uuid,
            /// The buyer who wrote it.
            author_id: Uuid,
            /// 1 to 5.
            rating: Rating,
            /// Free text, or `null`.
            comment: Option<Comment>,
        },
        /// `review.edited` v1: the author changed it; both fields as they are now.
        Edited = "review.edited" version 1 {
            /// The product.
            product_id: Uuid,
            /// 1 to 5.
            rating: Rating,
            /// Free text, or `null`.
            comment: Option<Comment>,
        },
        /// `review.deleted` v1: its author or an administrator deleted it.
        Deleted = "review.deleted" version 1 {
            /// The product.
            product_id: Uuid,
        },
    }
}

/// A rating: an integer from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rating(u8);

impl Rating {
    /// Parses a requested rating.
    pub fn parse(raw: i64) -> Result<Self, ValueError> {
        match u8::try_from(raw) {
            Ok(value @ 1..=5) => Ok(Self(value)),
            _ => Err(ValueError("must be an integer from 1 to 5")),
        }
    }

    /// The value.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// Most characters of a comment.
pub const MAX_COMMENT: usize = 2000;

/// A comment: at most [`MAX_COMMENT`] characters, no control characters but line breaks
/// and tabs; surrounding white space is trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Comment(String);

impl Comment {
    /// Parses a requested comment; an empty one is no comment (`None`).
    pub fn parse(raw: &str) -> Result<Option<Self>, ValueError> {
        let text = raw.trim();
        if text.chars().count() > MAX_COMMENT {
            return Err(ValueError("must be at most 2000 characters"));
        }
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ValueError("must not contain control characters"));
        }
        Ok((!text.is_empty()).then(|| Self(text.to_owned())))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A review that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The product.
    pub product_id: Uuid,
    /// The author.
    pub author_id: Uuid,
    /// 1 to 5.
    pub rating: Rating,
    /// Free text.
    pub comment: Option<Comment>,
}

/// Everything the decider knows about one review.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReviewState {
    /// No event yet.
    #[default]
    New,
    /// Written and not deleted.
    Live(Review),
    /// Deleted: no command applies any more.
    Deleted,
}

/// What the write side knows about the author and the product when a review is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eligibility {
    /// The product exists (retired products may be reviewed by their buyers).
    pub product_exists: bool,
    /// The author has a placed, not cancelled order of it.
    pub purchased: bool,
}

/// What a caller asks of a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewCommand {
    /// Write it.
    Write {
        /// The product.
        product_id: Uuid,
        /// The author.
        author_id: Uuid,
        /// 1 to 5.
        rating: Rating,
        /// Free text.
        comment: Option<Comment>,
        /// May the author review the product?
        eligibility: Eligibility,
    },
    /// Change the rating and/or the comment (`Some(None)` removes the comment).
    Edit {
        /// Who asks.
        editor_id: Uuid,
        /// New rating.
        rating: Option<Rating>,
        /// New comment.
        comment: Option<Option<Comment>>,
    },
    /// Delete it.
    Delete {
        /// Who asks.
        by: Uuid,
        /// Is that an administrator?
        admin: bool,
    },
}

/// Why a review command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// The product does not exist.
    #[error("product not found")]
    ProductNotFound,
    /// The author never bought it (or cancelled every order of it).
    #[error("only a buyer of this product may review it")]
    NotPurchased,
    /// Write on an id that has events.
    #[error("review already exists")]
    AlreadyExists,
    /// Any other command on a review that does not exist or was deleted.
    #[error("review not found")]
    NotFound,
    /// The caller is neither the author nor (for a deletion) an administrator.
    #[error("only the author may change this review")]
    Forbidden,
}

/// The review aggregate as a [`Decider`].
pub struct ReviewAggregate;

impl Decider for ReviewAggregate {
    type State = ReviewState;
    type Command = ReviewCommand;
    type Event = ReviewEvent;
    type Error = ReviewError;

    fn decide(command: &ReviewCommand, state: &ReviewState) -> Result<Vec<ReviewEvent>, ReviewError> {
        let review = match (command, state) {
            (
                ReviewCommand::Write {
                    product_id,
                    author_id,
                    rating,
                    comment,
                    eligibility,
                },
                ReviewState::New,
            ) => {
                if !eligibility.product_exists {
                    return Err(ReviewError::ProductNotFound);
                }
                if !eligibility.purchased {
                    return Err(ReviewError::NotPurchased);
                }
                return Ok(vec![ReviewEvent::Written {
                    product_id: *product_id,
                    author_id: *author_id,
                    rating: *rating,
                    comment: comment.clone(),
                }]);
            }
            (ReviewCommand::Write { .. }, _) => return Err(ReviewError::AlreadyExists),
            (_, ReviewState::New | ReviewState::Deleted) => return Err(ReviewError::NotFound),
            (_, ReviewState::Live(review)) => review,
        };
        match command {
            ReviewCommand::Write { .. } => Err(ReviewError::AlreadyExists),
            ReviewCommand::Edit {
                editor_id,
                rating,
                comment,
            } => {
                if *editor_id != review.author_id {
                    return Err(ReviewError::Forbidden);
                }
                let rating = rating.unwrap_or(review.rating);
                let comment = comment.clone().unwrap_or_else(|| review.comment.clone());
                if rating == review.rating && comment == review.comment {
                    return Ok(vec![]);
                }
                Ok(vec![ReviewEvent::Edited {
                    product_id: review.product_id,
                    rating,
                    comment,
                }])
            }
            ReviewCommand::Delete { by, admin } => {
                if *by != review.author_id && !admin {
                    return Err(ReviewError::Forbidden);
                }
                Ok(vec![ReviewEvent::Deleted {
                    product_id: review.product_id,
                }])
            }
        }
    }

    fn evolve(state: ReviewState, event: &ReviewEvent) -> ReviewState {
        match (state, event) {
            (
                _,
                ReviewEvent::Written {
                    product_id,
                    author_id,
                    rating,
                    comment,
                },
            ) => ReviewState::Live(Review {
                product_id: *product_id,
                author_id: *author_id,
                rating: *rating,
                comment: comment.clone(),
            }),
            (ReviewState::Live(review), ReviewEvent::Edited { rating, comment, .. }) => {
                ReviewState::Live(Review {
                    rating: *rating,
                    comment: comment.clone(),
                    ..review
                })
            }
            (_, ReviewEvent::Deleted { .. }) => ReviewState::Deleted,
            (state @ (ReviewState::New | ReviewState::Deleted), ReviewEvent::Edited { .. }) => state,
        }
    }

    fn is_live(state: &ReviewState) -> bool {
        matches!(state, ReviewState::Live(_))
    }
}

/// The unique claim that keeps one review per product and author.
pub fn claim_value(product_id: Uuid, author_id: Uuid) -> String {
    format!("{product_id}:{author_id}")
}
