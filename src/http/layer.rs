//! `RequireAuth`: a layer that lets only signed-in requests through.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse as _, Response};
use tower::{Layer, Service};

use super::extract::authenticate;
use crate::auth::Auth;

/// The layer [`Auth::require_auth`] returns: requests without `X-Authingo-Client: true` get 403,
/// without a valid session cookie 401; the others reach the inner service with a
/// [`CurrentUser`](super::CurrentUser) in their extensions.
#[derive(Debug, Clone)]
pub struct RequireAuthLayer {
    auth: Auth,
}

impl RequireAuthLayer {
    pub(crate) fn new(auth: Auth) -> Self {
        Self { auth }
    }
}

impl<S> Layer<S> for RequireAuthLayer {
    type Service = RequireAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuth {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`RequireAuthLayer`] wraps around a route.
#[derive(Debug, Clone)]
pub struct RequireAuth<S> {
    inner: S,
    auth: Auth,
}

impl<S> Service<Request> for RequireAuth<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready is the one to call; keep a fresh one for next time.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let auth = self.auth.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match authenticate(&auth, &parts).await {
                Ok(user) => {
                    parts.extensions.insert(user);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(err) => Ok(err.into_response()),
            }
        })
    }
}
