// @generated automatically by Diesel CLI.

diesel::table! {
    one_time_tokens (token) {
        #[max_length = 64]
        token -> Varchar,
        #[max_length = 255]
        user_id -> Varchar,
        #[max_length = 32]
        purpose -> Varchar,
        #[max_length = 255]
        email -> Nullable<Varchar>,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    rate_limits (key) {
        #[max_length = 255]
        key -> Varchar,
        hits -> Int4,
        window_ends_at -> Timestamptz,
    }
}

diesel::table! {
    recovery_codes (user_id, code_digest) {
        #[max_length = 255]
        user_id -> Varchar,
        #[max_length = 64]
        code_digest -> Varchar,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        #[max_length = 255]
        id -> Varchar,
        #[max_length = 255]
        user_id -> Varchar,
        #[max_length = 255]
        token -> Varchar,
        #[max_length = 255]
        refresh_token -> Varchar,
        refresh_expires_at -> Timestamptz,
        expires_at -> Timestamptz,
        created_at -> Nullable<Timestamptz>,
        #[max_length = 255]
        previous_refresh_token -> Nullable<Varchar>,
        rotated_at -> Nullable<Timestamptz>,
        #[max_length = 255]
        rotation_secret -> Nullable<Varchar>,
        absolute_expires_at -> Nullable<Timestamptz>,
        persistent -> Bool,
        #[max_length = 255]
        user_agent -> Nullable<Varchar>,
        #[max_length = 64]
        ip_address -> Nullable<Varchar>,
        #[max_length = 64]
        refresh_family -> Nullable<Varchar>,
        #[max_length = 255]
        previous_token -> Nullable<Varchar>,
    }
}

diesel::table! {
    sign_in_device_failures (device_digest) {
        #[max_length = 64]
        device_digest -> Varchar,
        failures -> Int4,
        last_failed_at -> Timestamptz,
        forget_at -> Timestamptz,
    }
}

diesel::table! {
    sign_in_failures (email_digest) {
        #[max_length = 64]
        email_digest -> Varchar,
        failures -> Int4,
        last_failed_at -> Timestamptz,
        forget_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    totp_secrets (user_id) {
        #[max_length = 255]
        user_id -> Varchar,
        #[max_length = 64]
        key_id -> Varchar,
        ciphertext -> Bytea,
        confirmed_at -> Nullable<Timestamptz>,
        last_used_step -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    trusted_devices (device_digest) {
        #[max_length = 64]
        device_digest -> Varchar,
        #[max_length = 255]
        user_id -> Varchar,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    two_factor_challenges (challenge_digest) {
        #[max_length = 64]
        challenge_digest -> Varchar,
        #[max_length = 255]
        user_id -> Varchar,
        persistent -> Bool,
        failures -> Int4,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        #[max_length = 255]
        id -> Varchar,
        #[max_length = 255]
        email -> Varchar,
        #[max_length = 255]
        name -> Varchar,
        #[max_length = 255]
        password_hash -> Varchar,
        email_verified -> Nullable<Bool>,
        created_at -> Nullable<Timestamptz>,
        updated_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(one_time_tokens -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(totp_secrets -> users (user_id));
diesel::joinable!(trusted_devices -> users (user_id));
diesel::joinable!(two_factor_challenges -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    one_time_tokens,
    rate_limits,
    recovery_codes,
    sessions,
    sign_in_device_failures,
    sign_in_failures,
    totp_secrets,
    trusted_devices,
    two_factor_challenges,
    users,
);
