//! Arbitrary client bytes after a completed handshake, read by a server-side
//! `tokio_tungstenite::WebSocketStream` over an in-memory duplex stream, configured as the
//! runtime configures it (buffer sizes and size limits from `Limits::default()`). The server
//! side echoes data messages, as an echo endpoint does, and on an error sends the close frame
//! the runtime's driver would (1002, 1007 or 1009).
//!
//! The input is a list of frames whose every header field may be wrong (FIN, RSV bits, opcode,
//! mask, a length that lies), followed by raw bytes; most frames are masked, so inputs get past
//! the first frame and reach fragmentation, UTF-8 and close-frame handling.
//!
//! Properties: no panic, no hang, memory bounded by the limits (libFuzzer's `-rss_limit_mb`),
//! every message delivered respects the limits, every close code delivered is one a peer may
//! send, and every read error maps to a close code of the contract.
//!
//! The runtime's driver (`connection.rs`) is private; see fuzz/README.md.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use endpoint_runtime::Limits;
use futures::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::Message;

#[derive(Arbitrary, Debug)]
struct RawFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    unmasked: bool,
    mask: [u8; 4],
    payload: Vec<u8>,
    /// A length to announce instead of the payload's.
    claimed_len: Option<u64>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    frames: Vec<RawFrame>,
    tail: Vec<u8>,
}

impl RawFrame {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push((u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | (self.opcode & 0xF));
        let mask_bit = if self.unmasked { 0 } else { 0x80 };
        let len = self.claimed_len.unwrap_or(self.payload.len() as u64);
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= u64::from(u16::MAX) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        if self.unmasked {
            out.extend_from_slice(&self.payload);
        } else {
            out.extend_from_slice(&self.mask);
            out.extend(
                self.payload
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ self.mask[i % 4]),
            );
        }
    }
}

/// The same configuration as `connection::ws_config` with default limits.
fn config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_size)
        .write_buffer_size(limits.write_buffer_size)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(limits.max_message_size))
        .max_frame_size(Some(limits.max_frame_size.min(limits.max_message_size)))
}

/// The close code the runtime's driver sends for a read error (`Driver::read_error` and
/// `EndpointError::close_code`); `None` when the transport is gone.
fn close_code(e: &WsError) -> Option<u16> {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => Some(1009),
        WsError::Utf8(_) => Some(1007),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) | WsError::Capacity(_) => Some(1002),
        WsError::Io(_) | WsError::ConnectionClosed | WsError::AlreadyClosed => None,
        _ => Some(1002),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|input: Input| {
    let mut bytes = Vec::new();
    for f in input.frames.iter().take(64) {
        f.encode(&mut bytes);
    }
    bytes.extend_from_slice(&input.tail);
    let limits = Limits::default();

    runtime().block_on(async {
        let (client, server) = tokio::io::duplex(64 << 10);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let write = async move {
            let _ = client_write.write_all(&bytes).await;
            let _ = client_write.shutdown().await;
        };
        let read = async move {
            let mut sink = vec![0u8; 16 << 10];
            while let Ok(n) = client_read.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let serve = async {
            let mut ws =
                WebSocketStream::from_raw_socket(server, Role::Server, Some(config(&limits))).await;
            for _ in 0..10_000 {
                match ws.next().await {
                    None => break,
                    Some(Ok(msg)) => match msg {
                        Message::Text(_) | Message::Binary(_) => {
                            assert!(msg.len() <= limits.max_message_size);
                            if ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                        Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
                        Message::Close(frame) => {
                            if let Some(f) = frame {
                                assert!(
                                    f.code.is_allowed() || f.code == CloseCode::Protocol,
                                    "close code {} delivered",
                                    u16::from(f.code)
                                );
                            }
                        }
                        Message::Frame(_) => unreachable!("raw frames are never read"),
                    },
                    Some(Err(e)) => {
                        if let Some(code) = close_code(&e) {
                            assert!(matches!(code, 1002 | 1007 | 1009));
                            let frame = CloseFrame {
                                code: CloseCode::from(code),
                                reason: "fuzz".into(),
                            };
                            let _ = ws.close(Some(frame)).await;
                        }
                        break;
                    }
                }
            }
        };
        tokio::join!(write, read, serve);
    });
});
