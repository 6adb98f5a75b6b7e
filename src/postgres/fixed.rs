//! The hot fixed statements: each `.sql` file a Diesel query type of its own, kept prepared
//! under its type and read by position.
//!
//! A `sql_query` in [`Prepared`](super::prepared::Prepared) costs on every call what a fixed
//! text should not: the text copied into a `String`, then hashed and compared in full by
//! diesel-async's statement cache, which keys it by text; and each column of its row found by
//! name. Here every statement is its own type with a static [`QueryId`], so the cache finds it by
//! `TypeId`, its text is pushed from the `&'static str` the file compiles to, and its row has a
//! [`Query::SqlType`], so it decodes positionally through `Queryable`.
//!
//! The text is the file's, byte for byte: [`QueryFragment::to_sql`] writes it as it is, with its
//! own `$1`…`$n`, and the binds are pushed in that order by `walk_ast`, which the other passes
//! (collecting binds, the cache check, debug output) use. A fixed statement is therefore always a
//! whole statement, never part of a built one, whose `to_sql` would go through `walk_ast`.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryBuilder as _, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDslSupport;
use diesel::result::QueryResult;
use diesel::sql_types::{Bool, Double, Integer, Nullable, Timestamptz, Varchar};

/// The SQL types of a session's columns as the `.sql` files select them, in their order:
/// `session_id`, `token`, `refresh_token`, `expires_at`, `refresh_expires_at`,
/// `session_created_at`, `rotated_at`, `absolute_expires_at`, `persistent`, `user_agent`,
/// `ip_address`.
pub(crate) type SessionSql = (
    Varchar,
    Varchar,
    Varchar,
    Timestamptz,
    Timestamptz,
    Nullable<Timestamptz>,
    Nullable<Timestamptz>,
    Nullable<Timestamptz>,
    Bool,
    Nullable<Varchar>,
    Nullable<Varchar>,
);

/// The SQL types of a user's columns as the `.sql` files select them, in their order (the
/// table's): `id`, `email`, `name`, `password_hash`, `email_verified`, `created_at`,
/// `updated_at`.
pub(crate) type UserSql = (
    Varchar,
    Varchar,
    Varchar,
    Varchar,
    Nullable<Bool>,
    Nullable<Timestamptz>,
    Nullable<Timestamptz>,
);

/// Declares a fixed statement: a struct of its binds, in the order of their `$n`, each with its
/// SQL type, and the SQL type of its row (none for a statement that returns no rows, which is
/// only executed).
macro_rules! fixed_statement {
    (
        $(#[$doc:meta])*
        $name:ident<$lt:lifetime>($file:literal) $(-> $row:ty)? {
            $($(#[$field_doc:meta])* $field:ident: $value:ty => $sql_type:ty,)+
        }
    ) => {
        $(#[$doc])*
        pub(crate) struct $name<$lt> {
            $($(#[$field_doc])* pub(crate) $field: $value,)+
        }

        impl<$lt> $name<$lt> {
            /// The statement's text: its `.sql` file.
            const SQL: &'static str = include_str!($file);
        }

        impl<$lt> QueryFragment<Pg> for $name<$lt> {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                $(out.push_bind_param::<$sql_type, $value>(&self.$field)?;)+
                Ok(())
            }

            fn to_sql(&self, out: &mut <Pg as diesel::backend::Backend>::QueryBuilder, _: &Pg)
                -> QueryResult<()>
            {
                out.push_sql(Self::SQL);
                Ok(())
            }
        }

        impl QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        // The marker that gives a query diesel-async's `RunQueryDsl` (`execute`, `get_result`).
        impl RunQueryDslSupport for $name<'_> {}

        $(
            impl Query for $name<'_> {
                type SqlType = $row;
            }
        )?
    };
}

fixed_statement! {
    /// `get_session.sql`: the session of an access-token digest, with its user.
    GetSession<'a>("get_session.sql") -> (SessionSql, UserSql) {
        /// The access token's digest.
        token: &'a str => Varchar,
    }
}

fixed_statement! {
    /// `get_user_by_email.sql`: the user with a (normalised) email.
    GetUserByEmail<'a>("get_user_by_email.sql") -> UserSql {
        /// The email, normalised.
        email: &'a str => Varchar,
    }
}

fixed_statement! {
    /// `refresh_session.sql`: one rotation of a session, returning it with its user.
    RefreshSession<'a>("refresh_session.sql") -> (SessionSql, UserSql) {
        /// The presented refresh token's digest.
        refresh_token: &'a str => Varchar,
        /// The new access token's digest.
        token: &'a str => Varchar,
        /// The new refresh token's digest.
        new_refresh_token: &'a str => Varchar,
        /// The new access token's expiry.
        expires_at: DateTime<Utc> => Timestamptz,
        /// The new refresh token's expiry.
        refresh_expires_at: DateTime<Utc> => Timestamptz,
        /// The rotation's secret, as stored.
        secret: &'a str => Varchar,
        /// The cap on an adopted session's lifetime, in seconds (none: no cap).
        max_lifetime: Option<f64> => Nullable<Double>,
        /// The digest of the refresh token's family.
        family: &'a str => Varchar,
    }
}

fixed_statement! {
    /// `replayed_session.sql`: the live session that issued this refresh token before its
    /// current one, with its user, its last rotation's secret, whether the token is the one that
    /// rotation replaced, and whether it is moreover within the grace window.
    ReplayedSession<'a>("replayed_session.sql")
        -> ((SessionSql, UserSql), Nullable<Varchar>, Bool, Bool)
    {
        /// The presented refresh token's digest.
        refresh_token: &'a str => Varchar,
        /// The grace window, in seconds.
        grace: f64 => Double,
        /// The digest of the presented token's family.
        family: &'a str => Varchar,
    }
}

fixed_statement! {
    /// `rate_limit_hit.sql`: one request against a counter; the count and the seconds until its
    /// window ends.
    RateLimitHit<'a>("rate_limit_hit.sql") -> (Integer, Double) {
        /// The counter's key.
        key: &'a str => Varchar,
        /// The window, in seconds.
        window: f64 => Double,
        /// The requests a window allows.
        max: i32 => Integer,
    }
}

fixed_statement! {
    /// `sign_in_attempt.sql`: one sign-in attempt counted against an email, unless its count
    /// throttles it; whether it may go ahead, the count, whether it is locked, and the seconds to
    /// wait.
    BeginSignInAttempt<'a>("sign_in_attempt.sql") -> (Bool, Integer, Bool, Double) {
        /// The email's digest.
        email_digest: &'a str => Varchar,
        /// Failures allowed without delay.
        free_failures: i32 => Integer,
        /// The first delay, in seconds.
        first_delay: f64 => Double,
        /// The longest delay, in seconds.
        max_delay: f64 => Double,
        /// Failures that lock the email (none: never).
        lock_after: Option<i32> => Nullable<Integer>,
        /// Seconds after the last failure when an unlocked count is forgotten.
        forget_after: f64 => Double,
        /// Seconds a lock lasts.
        lock_for: f64 => Double,
    }
}

fixed_statement! {
    /// `sign_in_device_attempt.sql`: one sign-in attempt counted against a trusted device, unless
    /// its own count throttles it or no longer trusts it; the same row as `sign_in_attempt.sql`'s.
    BeginDeviceSignInAttempt<'a>("sign_in_device_attempt.sql") -> (Bool, Integer, Bool, Double) {
        /// The digest of the device cookie's nonce.
        device_digest: &'a str => Varchar,
        /// Failures allowed without delay.
        free_failures: i32 => Integer,
        /// The first delay, in seconds.
        first_delay: f64 => Double,
        /// The longest delay, in seconds.
        max_delay: f64 => Double,
        /// Failures after which the device is no longer trusted.
        lock_after: i32 => Integer,
        /// Seconds after the last failure when the count is forgotten.
        forget_after: f64 => Double,
    }
}

fixed_statement! {
    /// `clear_sign_in_failures.sql`: an email's failures deleted, a lock with them.
    ClearSignInFailures<'a>("clear_sign_in_failures.sql") {
        /// The email's digest.
        email_digest: &'a str => Varchar,
    }
}

fixed_statement! {
    /// `clear_device_failures.sql`: a trusted device's failures deleted.
    ClearDeviceFailures<'a>("clear_device_failures.sql") {
        /// The digest of the device cookie's nonce.
        device_digest: &'a str => Varchar,
    }
}
