//! A request refused before its body was read (a wrong key, a broken multipart part) has its
//! body read out before the answer goes, so the sender sees the answer and its connection stays
//! usable for the next request.
//!
//! Without this, the HTTP server closes such a connection with the body still arriving: a client
//! still writing gets a broken pipe instead of its 401 or 400, and a pooled connection dies under
//! the next, perfectly valid request.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::CONNECTION;
use axum::middleware::Next;
use axum::response::Response;
use futures::{Stream, StreamExt};
use tokio::sync::oneshot;

/// More than this is not worth reading for a refusal; the connection is closed instead.
const DRAIN_BYTES: usize = 2 * super::MAX_BODY_BYTES;
const DRAIN_TIME: Duration = Duration::from_secs(2);

pub async fn drain_unread_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (give_back, mut unread) = oneshot::channel();
    let watched = Watched { inner: Some(body.into_data_stream()), give_back: Some(give_back) };
    let mut response = next.run(Request::from_parts(parts, Body::from_stream(watched))).await;
    // The handler has finished with the body: what it left unread is back here now, if anything.
    if let Ok(mut rest) = unread.try_recv() {
        let mut read = 0;
        let drained = tokio::time::timeout(DRAIN_TIME, async {
            while let Some(Ok(chunk)) = rest.next().await {
                read += chunk.len();
                if read > DRAIN_BYTES {
                    return false;
                }
            }
            true
        })
        .await;
        if drained != Ok(true) {
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// The request body as the handler sees it; dropped before its end, it hands the rest back.
struct Watched {
    inner: Option<BodyDataStream>,
    give_back: Option<oneshot::Sender<BodyDataStream>>,
}

impl Stream for Watched {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let polled = inner.poll_next_unpin(context);
        if let Poll::Ready(None) = polled {
            self.inner = None;
        }
        polled
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let (Some(inner), Some(give_back)) = (self.inner.take(), self.give_back.take()) {
            let _ = give_back.send(inner);
        }
    }
}
