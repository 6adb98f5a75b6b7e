// @generated automatically by Diesel CLI.

diesel::table! {
    posts (id) {
        id -> Int4,
        #[max_length = 255]
        user_id -> Varchar,
        title -> Text,
    }
}
