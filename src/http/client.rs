//! Who is asking: the client's address (the TCP peer, or what trusted proxies forward) and user
//! agent, as a sign-in records them.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::forwarded::client_ip;
use crate::auth::{Auth, RequestContext};

/// The client of a request, for the session it opens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Client {
    pub(crate) ip_address: Option<IpAddr>,
    pub(crate) user_agent: Option<String>,
}

impl Client {
    /// What the engine is told of this client, with `remember_me` for a sign-in.
    pub(crate) fn context(&self, remember_me: bool) -> RequestContext {
        RequestContext::default()
            .remember_me(remember_me)
            .user_agent(self.user_agent.as_deref())
            .ip_address(self.ip_address)
    }
}

impl<S> FromRequestParts<S> for Client
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let auth = Auth::from_ref(state);
        // Present when the app is served with `into_make_service_with_connect_info`.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self {
            ip_address: peer.map(|peer| client_ip(auth.http_options(), peer, &parts.headers)),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
        })
    }
}
