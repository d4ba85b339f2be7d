//! The tower glue: a `Service` that asks the engine before calling the
//! wrapped service.
//!
//! The response body is `Either` the inner service's body or the layer's
//! own JSON, which keeps the inner body type intact (no boxing on the hot
//! path) and satisfies axum's and hyper's body bounds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use tower_layer::Layer;
use tower_service::Service;

use super::{Engine, RateLimitLayer, Verdict};

/// The body of a response that went through the layer.
pub type RateLimitBody<B> = Either<B, Full<Bytes>>;

/// The service the layer wraps around `S`.
#[derive(Clone)]
pub struct RateLimitService<S> {
    inner: S,
    engine: Arc<Engine>,
}

impl<S> std::fmt::Debug for RateLimitService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimitService")
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            engine: self.engine.clone(),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimitService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<RateLimitBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone is not ready; the ready one (polled above) serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let engine = self.engine.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let verdict = Engine::decide(&engine, &parts).await;
            let request = Request::from_parts(parts, body);
            match verdict {
                Verdict::Exempt => Ok(inner.call(request).await?.map(Either::Left)),
                Verdict::Allow { headers } => {
                    let mut response = inner.call(request).await?.map(Either::Left);
                    for (name, value) in &headers {
                        if !response.headers().contains_key(name) {
                            response.headers_mut().insert(name.clone(), value.clone());
                        }
                    }
                    Ok(response)
                }
                Verdict::Deny {
                    endpoint,
                    headers,
                    retry_after_secs,
                } => {
                    let body = serde_json::json!({
                        "error": "rate_limited",
                        "message": "Too many requests",
                        "endpoint": endpoint,
                        "retry_after": retry_after_secs,
                    });
                    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
                    response.headers_mut().extend(headers);
                    Ok(response)
                }
                Verdict::Unavailable { endpoint } => {
                    let body = serde_json::json!({
                        "error": "rate_limiter_unavailable",
                        "message": "The rate limiter cannot be reached",
                        "endpoint": endpoint,
                    });
                    let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                    Ok(response)
                }
            }
        })
    }
}

fn json_response<B>(status: StatusCode, body: &serde_json::Value) -> Response<RateLimitBody<B>> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
