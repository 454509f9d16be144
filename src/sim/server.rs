//! Serving simulated vendors on 127.0.0.1 until told to stop.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::conn::{ConnHandle, ResetListener};

/// Listens on 127.0.0.1:`port` (0 picks one) and serves `app` until `stop`,
/// over HTTPS when `tls` is given.
pub(crate) async fn listen(
    port: u16,
    app: Router,
    stop: CancellationToken,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let addr = listener.local_addr()?;
    let app = app.into_make_service_with_connect_info::<ConnHandle>();
    let server = tokio::spawn(async move {
        // Accept errors are retried inside the listener, so serving only
        // ends at shutdown.
        match tls {
            None => {
                let _ = axum::serve(ResetListener(listener), app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
            }
            Some(config) => {
                if let Ok(listener) = crate::sandbox::tls::TlsListener::new(listener, config) {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .await;
                }
            }
        }
    });
    Ok((addr, server))
}
