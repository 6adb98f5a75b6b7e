//! Joins between an application's tables and the crate's: the impls that diesel's
//! `allow_tables_to_appear_in_same_query!` cannot write across crates.

/// Lets each application table named appear in one query with authingo's
/// [`users`](crate::postgres::schema::users) and [`sessions`](crate::postgres::schema::sessions),
/// as `diesel::allow_tables_to_appear_in_same_query!` does for tables of one crate.
///
/// diesel's own macro fails for a table of another crate (E0117, diesel issue #4858): besides the
/// two impls a join needs, it writes impls for `Only<users::table>` and
/// `Tablesample<users::table, _>`, types of neither crate. This macro writes only the two, for
/// each pair, so `ONLY` and `TABLESAMPLE` queries that mix the crates are not covered. Call it
/// once, where the tables' modules are in scope, beside the `joinable!` that names the foreign
/// key:
///
/// ```rust
/// mod schema {
///     // Written by `diesel print-schema` with the application's `diesel.toml`, whose filter
///     // leaves authingo's tables out.
///     diesel::table! {
///         posts (id) {
///             id -> Int4,
///             #[max_length = 255]
///             user_id -> Varchar,
///             title -> Text,
///         }
///     }
/// }
///
/// use authingo::postgres::schema::users;
/// use diesel::prelude::*;
/// use schema::posts;
///
/// diesel::joinable!(posts -> users (user_id));
/// authingo::allow_tables_to_appear_with_authingo!(posts);
///
/// // Checked by the compiler like any join of one crate's tables:
/// let titles_and_authors = posts::table
///     .inner_join(users::table)
///     .filter(users::email.eq("ada@example.com"))
///     .select((posts::title, users::name));
/// # let sql = diesel::debug_query::<diesel::pg::Pg, _>(&titles_and_authors).to_string();
/// # assert!(sql.contains(r#"INNER JOIN "users" ON ("posts"."user_id" = "users"."id")"#), "{sql}");
/// ```
#[macro_export]
macro_rules! allow_tables_to_appear_with_authingo {
    ($($table:ident),+ $(,)?) => {
        $(
            $crate::__table_not_equal!($table, users);
            $crate::__table_not_equal!($table, sessions);
        )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __table_not_equal {
    ($table:ident, $ours:ident) => {
        impl
            $crate::postgres::__diesel::query_source::TableNotEqual<
                $crate::postgres::schema::$ours::table,
            > for $table::table
        {
        }
        impl $crate::postgres::__diesel::query_source::TableNotEqual<$table::table>
            for $crate::postgres::schema::$ours::table
        {
        }
    };
}
