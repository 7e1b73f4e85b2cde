//! The one list of side effects. Adding one is writing its module (a [`SideEffect`]) and
//! one line in [`EFFECTS`]; its consumers, dead letters, operator retries and ledger rows
//! follow from that declaration.

use crate::effects::{EffectContext, EffectError, Performed, SideEffect};
use crate::email_change::EmailChangeNotice;
use crate::order_confirmation::OrderConfirmation;
use crate::password_reset::PasswordResetEmail;
use crate::welcome::WelcomeEmail;
use eventstore::EventEnvelope;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Every side effect the workers carry out.
pub const EFFECTS: &[Declaration] = &[
    Declaration::of::<WelcomeEmail>(),
    Declaration::of::<OrderConfirmation>(),
    Declaration::of::<PasswordResetEmail>(),
    Declaration::of::<EmailChangeNotice>(),
];

/// A [`SideEffect`] as registered: its name, its event types and how to build it.
#[derive(Clone, Copy)]
pub struct Declaration {
    /// [`SideEffect::NAME`].
    pub name: &'static str,
    /// [`SideEffect::EVENT_TYPES`].
    pub event_types: &'static [&'static str],
    build: fn(&EffectContext) -> Arc<dyn Perform>,
}

impl Declaration {
    /// The declaration of `E`.
    pub const fn of<E: SideEffect>() -> Self {
        Self {
            name: E::NAME,
            event_types: E::EVENT_TYPES,
            build: build::<E>,
        }
    }

    /// One durable consumer per event type. The first keeps the effect's own name
    /// (`workers-welcome-email`), so an effect that learns a second event type keeps
    /// its consumer and position; the others add their event type.
    pub fn subscriptions(&self) -> impl Iterator<Item = Subscription> + '_ {
        let base = format!("workers-{}", self.name.replace('_', "-"));
        self.event_types
            .iter()
            .enumerate()
            .map(move |(index, event_type)| {
                let consumer = match index {
                    0 => base.clone(),
                    _ => format!("{base}-{}", event_type.replace('.', "-")),
                };
                Subscription {
                    consumer,
                    event_type,
                    effect: self.name,
                }
            })
    }
}

fn build<E: SideEffect>(context: &EffectContext) -> Arc<dyn Perform> {
    Arc::new(E::from_context(context))
}

/// A [`SideEffect`] behind a pointer (its `perform` made object-safe).
trait Perform: Send + Sync {
    fn perform<'a>(&'a self, envelope: &'a EventEnvelope) -> BoxFuture<'a, Result<Performed, EffectError>>;
}

impl<E: SideEffect> Perform for E {
    fn perform<'a>(&'a self, envelope: &'a EventEnvelope) -> BoxFuture<'a, Result<Performed, EffectError>> {
        Box::pin(SideEffect::perform(self, envelope))
    }
}

/// One durable consumer and the side effect it runs for every event it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Durable consumer name, shared by every workers replica.
    pub consumer: String,
    /// The one event type it reads (NATS 2.9: one filter subject per consumer).
    pub event_type: &'static str,
    /// The side effect it runs, as named in `side_effects` and `dead_letters`.
    pub effect: &'static str,
}

/// Every consumer of the registered effects, in [`EFFECTS`] order.
pub fn subscriptions() -> Vec<Subscription> {
    subscriptions_of(EFFECTS)
}

fn subscriptions_of(declarations: &[Declaration]) -> Vec<Subscription> {
    declarations.iter().flat_map(Declaration::subscriptions).collect()
}

/// One built side effect, run by name.
#[derive(Clone)]
pub struct Effect {
    declaration: Declaration,
    runner: Arc<dyn Perform>,
}

impl Effect {
    /// Its name in `side_effects` and `dead_letters`.
    pub fn name(&self) -> &'static str {
        self.declaration.name
    }

    /// Its declaration.
    pub fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    /// Carries it out for one event.
    pub async fn perform(&self, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        self.runner.perform(envelope).await
    }
}

/// Every registered side effect, built once per process.
#[derive(Clone)]
pub struct Effects {
    effects: Arc<[Effect]>,
}

impl Effects {
    /// The effects of [`EFFECTS`], built from `context`.
    pub fn new(context: &EffectContext) -> Self {
        Self::from_declarations(EFFECTS, context)
    }

    /// The effects of `declarations` (tests register their own).
    pub fn from_declarations(declarations: &[Declaration], context: &EffectContext) -> Self {
        let effects = declarations
            .iter()
            .map(|declaration| Effect {
                declaration: *declaration,
                runner: (declaration.build)(context),
            })
            .collect();
        Self { effects }
    }

    /// The effect named `name`.
    pub fn get(&self, name: &str) -> Option<&Effect> {
        self.effects.iter().find(|effect| effect.name() == name)
    }

    /// Every effect, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Effect> {
        self.effects.iter()
    }

    /// Every consumer of these effects.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.iter()
            .flat_map(|effect| effect.declaration().subscriptions())
            .collect()
    }

    /// Carries out effect `name` for one event (an operator's retry of a dead letter
    /// names its effect); an effect no longer registered fails permanently.
    pub async fn perform(&self, name: &str, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        match self.get(name) {
            Some(effect) => effect.perform(envelope).await,
            None => Err(EffectError::permanent("unknown side effect")),
        }
    }
}

#[cfg(test)]
mod tests;
