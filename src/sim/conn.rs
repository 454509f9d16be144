//! Connections that a handler can reset.
//!
//! A "connection reset" fault must look to the client like a peer that went
//! away: no status line, no body, a TCP RST. A handler cannot reach its socket
//! through axum, so every accepted stream is wrapped in a [`Conn`] whose
//! [`ConnHandle`] travels with each request as connect info. Tripping the
//! handle makes the next write fail after setting `SO_LINGER` to zero, so
//! hyper drops the connection before a byte of the response leaves and the
//! kernel answers with a reset instead of an orderly close.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A loopback listener whose streams can be reset by the request they carry.
pub(crate) struct ResetListener(pub(crate) TcpListener);

impl Listener for ResetListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    // Small responses would otherwise wait for the client's
                    // delayed ACK (Nagle), which caps a keep-alive connection
                    // at a few dozen requests a second.
                    let _ = stream.set_nodelay(true);
                    let conn = Conn {
                        stream,
                        reset: Arc::new(AtomicBool::new(false)),
                    };
                    return (conn, addr);
                }
                // Out of file descriptors and the like: give the load a moment
                // to drain instead of spinning on the error.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// An accepted stream with a reset switch.
pub(crate) struct Conn {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

/// The switch of the connection a request arrived on.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle(Arc<AtomicBool>);

impl ConnHandle {
    /// Makes the connection die with a TCP reset instead of sending the
    /// response the handler returns.
    pub(crate) fn reset(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, ResetListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, ResetListener>) -> Self {
        ConnHandle(Arc::clone(&stream.io().reset))
    }
}

impl Conn {
    fn tripped(&self) -> Option<io::Error> {
        if self.reset.load(Ordering::Acquire) {
            // Zero linger turns the close that follows into an RST.
            let _ = self.stream.set_zero_linger();
            Some(io::Error::from(io::ErrorKind::ConnectionReset))
        } else {
            None
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.tripped() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.tripped() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.tripped() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.tripped() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.tripped() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Conn {
    /// An accepted stream with its switch off (for listeners other than
    /// [`ResetListener`], such as the HTTPS one).
    pub(crate) fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            reset: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The switch of this connection.
    pub(crate) fn handle(&self) -> ConnHandle {
        ConnHandle(Arc::clone(&self.reset))
    }
}
