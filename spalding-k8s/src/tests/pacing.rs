//! How soon the controller reconciles a VC again ([`Context::next_reconcile`]):
//! the forming interval after a reconcile that acted, doubling while a
//! forming VC's reconciles do nothing (up to the refresh interval), and the
//! refresh interval for a ready VC at rest.

use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use spalding_core::machine::{Action, Plan};
use spalding_core::ports::MockEntropy;
use spalding_core::reconciler::Outcome;
use spalding_core::spec::State;

use super::fixtures::{ApiServer, context, transport};
use crate::controller::{Context, Settings};
use crate::crd::VirtualCloud;

fn outcome(state: State, acted: bool) -> Outcome {
    Outcome {
        state: Some(state),
        plan: Plan {
            actions: if acted {
                vec![Action::CreateMacKeyShares]
            } else {
                Vec::new()
            },
        },
    }
}

fn next(ctx: &Context, state: State, acted: bool) -> Duration {
    let vc: ObjectRef<VirtualCloud> = ObjectRef::new("demo").within("default");
    ctx.next_reconcile(vc, &outcome(state, acted))
}

#[tokio::test]
async fn forming_vcs_are_looked_at_soon_and_back_off_while_quiet() {
    let (client, _server) = ApiServer::new();
    let ctx = context(client, transport(None), MockEntropy::new());
    let Settings {
        forming_interval,
        refresh_interval,
        ..
    } = Settings::default();
    assert_eq!(next(&ctx, State::Admission, true), forming_interval);
    let mut expected = forming_interval;
    for _ in 0..10 {
        assert_eq!(next(&ctx, State::Admission, false), expected);
        expected = (expected * 2).min(refresh_interval);
    }
    assert_eq!(next(&ctx, State::Initializing, false), refresh_interval);
    assert_eq!(
        next(&ctx, State::Initializing, true),
        forming_interval,
        "acting resets the back-off"
    );
    assert_eq!(next(&ctx, State::Starting, false), forming_interval);
}

#[tokio::test]
async fn a_ready_vc_rests_at_the_refresh_interval_unless_it_acted() {
    let (client, _server) = ApiServer::new();
    let ctx = context(client, transport(None), MockEntropy::new());
    let settings = Settings::default();
    assert_eq!(
        next(&ctx, State::Ready, true),
        settings.forming_interval,
        "a ready VC that acted is looked at again soon"
    );
    assert_eq!(next(&ctx, State::Ready, false), settings.refresh_interval);
    assert_eq!(next(&ctx, State::Ready, false), settings.refresh_interval);
}
