//! The engine's spans and events, recorded whole by a layer of this test's own while the main
//! flows run: no secret appears in any of them, the spans carry the user and session ids, and
//! the store's spans are children of the engine's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use authingo::mail::CapturingMailer;
use authingo::telemetry::{SESSION_ID, STORE_OP, STORE_SPAN, USER_ID};
use authingo::{AuthError, RequestContext, SignUp, SignedIn};
use sha2::{Digest as _, Sha256};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use crate::support::{EngineBuilder, PASSWORD, TestDb, current};

/// A span as recorded: its name, its fields (recorded later too), its parent's index.
#[derive(Debug, Clone)]
struct SpanSeen {
    name: &'static str,
    fields: BTreeMap<String, String>,
    parent: Option<usize>,
}

/// An event as recorded: its fields (the message too) and the index of its span.
#[derive(Debug, Clone)]
struct EventSeen {
    fields: BTreeMap<String, String>,
    span: Option<usize>,
}

#[derive(Debug, Default)]
struct Seen {
    spans: Vec<SpanSeen>,
    events: Vec<EventSeen>,
    /// The index of each live span: the registry reuses the ids of closed ones.
    live: HashMap<Id, usize>,
}

/// Records every span and event, whatever its level.
#[derive(Clone, Default)]
struct Everything(Arc<Mutex<Seen>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Everything {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .and_then(|parent| seen.live.get(&parent.id()).copied());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        seen.spans.push(SpanSeen {
            name: attrs.metadata().name(),
            fields,
            parent,
        });
        let index = seen.spans.len() - 1;
        seen.live.insert(id.clone(), index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        if let Some(index) = seen.live.get(id).copied() {
            values.record(&mut Fields(&mut seen.spans[index].fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        let span = ctx
            .event_span(event)
            .and_then(|span| seen.live.get(&span.id()).copied());
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        seen.events.push(EventSeen { fields, span });
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        self.0.lock().unwrap().live.remove(&id);
    }
}

impl Everything {
    /// Records this thread's spans and events (those of the tasks of a current-thread runtime
    /// on it too) until the guard goes.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        // `tracing` decides once per call site, for the whole process, whether it is wanted,
        // asking the subscribers there are when it is first reached: a process-wide one that
        // wants everything keeps the answer "yes" for this thread's (see
        // `support::capture_logs`).
        static ANCHOR: std::sync::Once = std::sync::Once::new();
        ANCHOR.call_once(|| {
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let everything = Self::default();
        let subscriber = Registry::default().with(everything.clone());
        (everything, tracing::subscriber::set_default(subscriber))
    }

    fn seen(&self) -> (Vec<SpanSeen>, Vec<EventSeen>) {
        let seen = self.0.lock().unwrap();
        (seen.spans.clone(), seen.events.clone())
    }
}

/// What must never be in a span or an event: the value, and where it is a token, its digest as
/// stored (hex SHA-256).
#[derive(Default)]
struct Secrets(Vec<(String, &'static str)>);

impl Secrets {
    fn add(&mut self, value: &str, what: &'static str) {
        self.0.push((value.to_owned(), what));
    }

    fn token(&mut self, token: &str, what: &'static str) {
        self.add(token, what);
        self.add(&hex::encode(Sha256::digest(token.as_bytes())), what);
    }

    fn signed_in(&mut self, signed_in: &SignedIn) {
        let tokens = &signed_in.tokens;
        self.token(tokens.access_token.expose(), "an access token");
        self.token(tokens.refresh_token.expose(), "a refresh token");
        self.add(signed_in.session.token.as_str(), "an access token's digest");
        self.add(
            signed_in.session.refresh_token.as_str(),
            "a refresh token's digest",
        );
        self.add(
            tokens.refresh_token.family().as_str(),
            "a refresh token's family",
        );
        self.add(&signed_in.user.password_hash, "a password hash");
        if let Some(device) = &signed_in.device {
            self.add(device.expose(), "a device cookie");
        }
    }
}

const NEW_PASSWORD: &str = "a brand new password";
const NEWER_PASSWORD: &str = "another new password";

#[tokio::test]
async fn no_secret_is_in_any_span_or_event_and_spans_carry_the_ids() {
    let (everything, _guard) = Everything::install();
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .ready()
        .await;
    let context = RequestContext::default();
    let mut secrets = Secrets::default();
    for password in [PASSWORD, "wrong password", NEW_PASSWORD, NEWER_PASSWORD] {
        secrets.add(password, "a password");
    }
    secrets.add("ada@example.com", "an email");
    secrets.add("ada.new@example.com", "an email");

    // Sign-up, sign-in, a wrong password.
    let signed_up = auth
        .sign_up("ada@example.com", PASSWORD, "Ada", &context)
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    secrets.signed_in(&signed_up);
    let signed_in = auth
        .sign_in("ada@example.com", PASSWORD, &context)
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    secrets.signed_in(&signed_in);
    let wrong = auth
        .sign_in("ada@example.com", "wrong password", &context)
        .await
        .and_then(authingo::SignIn::signed_in);
    assert!(matches!(wrong, Err(AuthError::InvalidCredentials)));
    assert!(
        auth.get_session(signed_up.tokens.access_token.expose())
            .await
            .unwrap()
            .is_some()
    );

    // Refresh, a replay within the window, another rotation, and the first token again: reuse.
    let refresh = |signed_in: &SignedIn| signed_in.tokens.refresh_token.expose().to_owned();
    let rotated = auth.refresh(&refresh(&signed_in), &context).await.unwrap();
    secrets.signed_in(&rotated);
    auth.refresh(&refresh(&signed_in), &context).await.unwrap();
    let again = auth.refresh(&refresh(&rotated), &context).await.unwrap();
    secrets.signed_in(&again);
    let reused = auth.refresh(&refresh(&signed_in), &context).await;
    assert!(matches!(reused, Err(AuthError::InvalidSession)));

    // A change of email, confirmed by the link to the new address.
    auth.request_email_change(
        &current(&signed_up),
        PASSWORD,
        "ada.new@example.com",
        &context,
    )
    .await
    .unwrap();
    auth.flush_background().await;
    for message in mail.take() {
        if let Some(token) = message.link_token() {
            secrets.token(&token, "a mailed token");
            if message.to == "ada.new@example.com" {
                auth.confirm_email_change(&token, &context).await.unwrap();
            }
        }
    }

    // A reset: asked, then done with the mailed link.
    auth.request_password_reset("ada.new@example.com", &context)
        .await
        .unwrap();
    auth.flush_background().await;
    let reset = mail
        .take()
        .into_iter()
        .find_map(|message| message.link_token())
        .unwrap();
    secrets.token(&reset, "a mailed token");
    auth.reset_password(&reset, NEW_PASSWORD, &context)
        .await
        .unwrap();

    // Signed in anew, a change of password, a sign-out.
    let last = auth
        .sign_in("ada.new@example.com", NEW_PASSWORD, &context)
        .await
        .and_then(authingo::SignIn::signed_in)
        .unwrap();
    secrets.signed_in(&last);
    auth.change_password(&current(&last), NEW_PASSWORD, NEWER_PASSWORD, true)
        .await
        .unwrap();
    auth.flush_background().await;
    let ada = auth
        .user_by_email("ada.new@example.com")
        .await
        .unwrap()
        .unwrap();
    secrets.add(&ada.password_hash, "a password hash");
    assert!(
        auth.sign_out(last.tokens.access_token.expose())
            .await
            .unwrap()
    );

    let (spans, events) = everything.seen();
    for span in &spans {
        for (field, value) in &span.fields {
            for (secret, what) in &secrets.0 {
                assert!(
                    !value.contains(secret.as_str()),
                    "{what} in the field {field} of the span {}: {value}",
                    span.name
                );
            }
        }
    }
    for event in &events {
        for (field, value) in &event.fields {
            for (secret, what) in &secrets.0 {
                assert!(
                    !value.contains(secret.as_str()),
                    "{what} in the field {field} of an event: {:?}",
                    event.fields
                );
            }
        }
    }

    let user_id = signed_up.user.id.as_str();
    let with = |name: &str, field: &str, value: &str| {
        spans.iter().any(|span| {
            span.name == name && span.fields.get(field).map(String::as_str) == Some(value)
        })
    };
    assert!(with("sign_up", USER_ID, user_id));
    assert!(with("sign_up", SESSION_ID, &signed_up.session.id));
    assert!(with("sign_in", USER_ID, user_id));
    assert!(with("sign_in", SESSION_ID, &signed_in.session.id));
    assert!(with("refresh", SESSION_ID, &signed_in.session.id));
    assert!(with("refresh", USER_ID, user_id));
    assert!(with("get_session", SESSION_ID, &signed_up.session.id));
    assert!(with("confirm_email_change", USER_ID, user_id));
    assert!(with("reset_password", USER_ID, user_id));
    assert!(with("change_password", SESSION_ID, &last.session.id));
    for name in ["request_email_change", "request_password_reset", "sign_out"] {
        assert!(spans.iter().any(|span| span.name == name), "no {name} span");
    }
    // The reuse is logged with the ids, in the refresh's span.
    let reuse = events
        .iter()
        .find(|event| {
            event.fields.get("message").map(String::as_str) == Some("refresh_token_reused")
        })
        .unwrap();
    assert_eq!(reuse.fields[SESSION_ID], signed_in.session.id);
    assert_eq!(spans[reuse.span.unwrap()].name, "refresh");

    // Each store operation is a child span of the engine's.
    let store_op = |op: &str, parent: &str| {
        spans.iter().any(|span| {
            span.name == STORE_SPAN
                && span.fields.get(STORE_OP).map(String::as_str) == Some(op)
                && span.parent.is_some_and(|p| spans[p].name == parent)
        })
    };
    assert!(store_op("create_user_with_session", "sign_up"));
    assert!(store_op("get_user_by_email", "sign_in"));
    assert!(store_op("create_session_verified", "sign_in"));
    assert!(store_op("refresh_session", "refresh"));
    assert!(store_op("get_session", "get_session"));
    assert!(store_op("use_token", "reset_password"));
    assert!(store_op("delete_session", "sign_out"));
    // Off the request path too: the reset link's lookup ran in the request's span.
    assert!(store_op("issue_token", "request_password_reset"));
    // Every store span has an engine operation for a parent.
    for span in spans.iter().filter(|span| span.name == STORE_SPAN) {
        assert!(
            span.parent.is_some(),
            "a store span without a parent: {span:?}"
        );
    }
}

/// Checks every span and event `everything` saw for every secret of `secrets`.
fn assert_none_seen(everything: &Everything, secrets: &Secrets) {
    let (spans, events) = everything.seen();
    let fields = spans
        .iter()
        .map(|span| (span.name, &span.fields))
        .chain(events.iter().map(|event| ("an event", &event.fields)));
    for (where_, fields) in fields {
        for (field, value) in fields {
            for (secret, what) in &secrets.0 {
                assert!(
                    !value.contains(secret.as_str()),
                    "{what} in the field {field} of {where_}: {value}"
                );
            }
        }
    }
}

#[tokio::test]
async fn no_second_factor_secret_is_in_any_span_or_event() {
    use authingo::{EncryptionKey, SecondFactorCode, SignIn, TwoFactorProof};

    use crate::support::code_in;

    let (everything, _guard) = Everything::install();
    let db = TestDb::new().await;
    let mail = Arc::new(CapturingMailer::new());
    let key = EncryptionKey::new([5; 32]);
    let auth = EngineBuilder::over(&db)
        .await
        .mailer(mail.clone())
        .rate_limits(None)
        .with(|options| options.encryption_key(key.clone()))
        .ready()
        .await;
    let context = RequestContext::default();
    let mut secrets = Secrets::default();
    secrets.add(PASSWORD, "a password");
    secrets.add(&key.to_base64(), "the encryption key");
    let ada = auth
        .sign_up("ada@example.com", PASSWORD, "Ada", &context)
        .await
        .and_then(SignUp::signed_in)
        .unwrap();
    secrets.signed_in(&ada);
    let enrolment = auth
        .enable_two_factor(&current(&ada), PASSWORD)
        .await
        .unwrap();
    secrets.add(&enrolment.secret, "the TOTP secret");
    let first = code_in(&enrolment.secret, 0);
    let codes = auth
        .confirm_two_factor(&current(&ada), &first)
        .await
        .unwrap();
    secrets.add(&first, "a TOTP code");
    for code in &codes.0 {
        secrets.add(code, "a recovery code");
        secrets.add(&code.replace('-', ""), "a recovery code");
    }
    let challenge = |auth: authingo::Auth| async move {
        match auth
            .sign_in("ada@example.com", PASSWORD, &RequestContext::default())
            .await
            .unwrap()
        {
            SignIn::TwoFactorRequired(challenge) => challenge.expose().to_owned(),
            SignIn::SignedIn(_) => panic!("no second factor asked"),
        }
    };
    let token = challenge(auth.clone()).await;
    secrets.token(&token, "a challenge");
    let code = code_in(&enrolment.secret, 1);
    secrets.add(&code, "a TOTP code");
    assert!(matches!(
        auth.verify_two_factor(&token, SecondFactorCode::Totp("000000"), false, &context)
            .await,
        Err(AuthError::InvalidCode)
    ));
    let by_code = auth
        .verify_two_factor(&token, SecondFactorCode::Totp(&code), true, &context)
        .await
        .unwrap();
    secrets.signed_in(&by_code);
    secrets.token(
        by_code.trusted_device.as_ref().unwrap().expose(),
        "a trusted browser",
    );
    let token = challenge(auth.clone()).await;
    secrets.token(&token, "a challenge");
    let by_recovery = auth
        .verify_two_factor(
            &token,
            SecondFactorCode::RecoveryCode(&codes.0[0]),
            false,
            &context,
        )
        .await
        .unwrap();
    secrets.signed_in(&by_recovery);
    auth.disable_two_factor(&current(&by_recovery), TwoFactorProof::Password(PASSWORD))
        .await
        .unwrap();
    auth.flush_background().await;
    let removal = mail
        .sent_to("ada@example.com")
        .into_iter()
        .find_map(|message| message.link_token())
        .unwrap();
    secrets.token(&removal, "a removal link");

    assert_none_seen(&everything, &secrets);
    let (spans, _) = everything.seen();
    for name in [
        "enable_two_factor",
        "confirm_two_factor",
        "verify_two_factor",
        "disable_two_factor",
    ] {
        assert!(
            spans.iter().any(|span| span.name == name
                && span.fields.get(USER_ID).map(String::as_str) == Some(ada.user.id.as_str())),
            "no {name} span with the user's id"
        );
    }
}
