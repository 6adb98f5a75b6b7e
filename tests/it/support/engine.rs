//! The one way a test makes an engine: [`EngineBuilder`], with what most tests want (cheap
//! argon2id, no cleanup loop) and the settings some of them vary.

use std::sync::Arc;

use authingo::auth::HttpOptions;
use authingo::limits::{RateLimits, SignInThrottle};
use authingo::mail::Mailer;
use authingo::password::PasswordHasher;
use authingo::{Auth, Options, Store};

use super::{FAST, TestDb};

/// An engine over `db` with [`EngineBuilder::on`]'s settings.
pub(crate) async fn engine(db: &TestDb) -> Auth {
    EngineBuilder::over(db).await.build()
}

/// Builds the engine under test.
pub(crate) struct EngineBuilder {
    options: Options,
}

impl EngineBuilder {
    /// Over a store on a small pool of `db` ([`TestDb::store`]).
    pub(crate) async fn over(db: &TestDb) -> Self {
        Self::on(db.store().await)
    }

    /// Over `store`, hashing with [`FAST`] argon2id and without a cleanup loop; every other
    /// setting at its default (rate limits and the sign-in throttle on, the development mailer).
    pub(crate) fn on(store: impl Store + 'static) -> Self {
        Self {
            options: Options::new(store).argon2(FAST).cleanup_interval(None),
        }
    }

    /// Hashing with `hasher` instead.
    pub(crate) fn hasher(self, hasher: Arc<dyn PasswordHasher>) -> Self {
        self.with(|options| options.password_hasher(hasher))
    }

    /// Mailing through `mailer`.
    pub(crate) fn mailer(self, mailer: Arc<dyn Mailer>) -> Self {
        self.with(|options| options.mailer(mailer))
    }

    /// With email verification required (enumeration-safe sign-up).
    pub(crate) fn verification_required(self) -> Self {
        self.with(|options| options.require_email_verification(true))
    }

    /// With the rate limits `limits` (`None`: every one off).
    pub(crate) fn rate_limits(self, limits: Option<RateLimits>) -> Self {
        self.with(|options| options.rate_limits(limits))
    }

    /// With the sign-in throttle `throttle` (`None`: off).
    pub(crate) fn sign_in_throttle(self, throttle: Option<SignInThrottle>) -> Self {
        self.with(|options| options.sign_in_throttle(throttle))
    }

    /// With the HTTP layer's settings `http`.
    pub(crate) fn http(self, http: HttpOptions) -> Self {
        self.with(|options| options.http(http))
    }

    /// With any other setting: `change` gets the options so far.
    pub(crate) fn with(self, change: impl FnOnce(Options) -> Options) -> Self {
        Self {
            options: change(self.options),
        }
    }

    /// The engine; a panic if `Auth::new` refuses the options.
    pub(crate) fn build(self) -> Auth {
        Auth::new(self.options).unwrap()
    }

    /// The engine once ready: its dummy hash made ([`Auth::ready`]), so that counts of hashing
    /// start from what the test does.
    pub(crate) async fn ready(self) -> Auth {
        let auth = self.build();
        auth.ready().await.unwrap();
        auth
    }
}
