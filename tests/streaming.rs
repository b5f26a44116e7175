//! Messages in parts, both ways (Jakarta's `@OnMessage (String part, boolean last)`,
//! `Reader`/`InputStream` handlers, `sendText(part, last)`), over real loopback sockets with the
//! hand-driven client of `raw/`:
//!
//! * a partial handler is called as each frame arrives: a client that sends `fin=0 "frag"`
//!   gets its answer before it sends the rest; a character cut by a frame boundary is carried
//!   to the next part, a broken one is 1007; a message in parts is limited by its handler's own
//!   `max_message_size` (or nothing), not the endpoint's;
//! * a streaming handler (`TextStream`, `BinaryStream`) reads a message while it arrives,
//!   through `Stream` or `AsyncRead`; what it leaves unread is discarded, and the next message
//!   is handled after it; a close inside the message ends the stream with an error;
//! * a message writer's parts go out as one fragmented message (continuation frames, FIN on
//!   the last) and nothing another task sends, or a broadcast, comes between them.

mod raw;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoint::prelude::*;
use futures::StreamExt;
use raw::*;
use tokio::io::AsyncReadExt;

/// Answers each part as it arrives with `<kind>:<part>|<last>`.
#[derive(Default)]
struct Parts;

#[server_endpoint("/parts")]
impl Parts {
    #[on_message]
    fn text(&mut self, part: &str, last: bool) -> String {
        format!("text:{part}|{last}")
    }

    #[on_message]
    fn binary(&mut self, part: Bytes, last: bool) -> String {
        format!("binary:{}|{last}", part.len())
    }
}

/// Whole text messages (the endpoint's limit applies) beside binary in parts with no limit.
#[derive(Default)]
struct Mixed {
    received: usize,
}

#[server_endpoint("/mixed", max_message_size = 1024)]
impl Mixed {
    #[on_message]
    fn text(&mut self, text: String) -> String {
        format!("whole:{}", text.len())
    }

    #[on_message]
    fn binary(&mut self, part: &[u8], last: bool) -> Option<String> {
        self.received += part.len();
        last.then(|| format!("received:{}", std::mem::take(&mut self.received)))
    }
}

/// Binary parts limited by the handler's own `max_message_size`.
#[derive(Default)]
struct Limited;

#[server_endpoint("/limited")]
impl Limited {
    #[on_message(max_message_size = 2000)]
    fn binary(&mut self, part: Vec<u8>, last: bool) -> Option<String> {
        last.then(|| format!("done:{}", part.len()))
    }
}

async fn server() -> Running {
    let mut limits = test_limits();
    limits.max_message_size = 4096;
    limits.max_frame_size = 4096;
    start(
        Server::new()
            .limits(limits)
            .endpoint::<Parts>()
            .endpoint::<Mixed>()
            .endpoint::<Limited>()
            .endpoint::<Writer>(),
    )
    .await
}

fn text_of(frame: &Received) -> String {
    String::from_utf8(frame.payload.clone()).expect("UTF-8")
}

/// The test: `fin=0 "frag"` is answered before the client sends the rest.
#[tokio::test]
async fn each_part_is_handled_as_its_frame_arrives() {
    let server = server().await;
    let mut ws = RawWs::connect(server.addr, "/parts").await;
    ws.send(&[Frame::text("frag").fin(false)]).await;
    let first = ws.read_frame().await.expect("the first part's answer");
    assert_eq!(text_of(&first), "text:frag|false");
    ws.send(&[Frame::new(CONT, "ment").fin(false)]).await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "text:ment|false");
    // A ping between parts is answered; then the last part.
    ws.send(&[Frame::new(PING, "p"), Frame::new(CONT, "!")])
        .await;
    let pong = ws.read_frame().await.unwrap();
    assert_eq!((pong.opcode, &pong.payload[..]), (PONG, &b"p"[..]));
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "text:!|true");
    // A message in one frame is one part, the last.
    ws.send(&[Frame::text("whole")]).await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "text:whole|true");
    // Binary likewise, an empty part included.
    ws.send(&[
        Frame::binary(vec![7; 300]).fin(false),
        Frame::new(CONT, Vec::new()).fin(false),
        Frame::new(CONT, vec![7; 5]),
    ])
    .await;
    for want in ["binary:300|false", "binary:0|false", "binary:5|true"] {
        assert_eq!(text_of(&ws.read_frame().await.unwrap()), want);
    }
}

/// A character cut by a frame boundary is delivered whole, with the part it ends.
#[tokio::test]
async fn a_character_cut_between_frames_is_carried_to_the_next_part() {
    let server = server().await;
    let mut ws = RawWs::connect(server.addr, "/parts").await;
    let euro = "€".as_bytes();
    ws.send(&[Frame::text([b"a", &euro[..1]].concat()).fin(false)])
        .await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "text:a|false");
    // Only the middle byte: no whole character yet, an empty part.
    ws.send(&[Frame::new(CONT, &euro[1..2]).fin(false)]).await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "text:|false");
    ws.send(&[Frame::new(CONT, [&euro[2..], b"b"].concat())])
        .await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "text:€b|true");
    // A message that ends inside a character is 1007, as is a byte that cannot continue one.
    ws.send(&[Frame::text([b"x", &euro[..2]].concat())]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1007));

    let mut ws = RawWs::connect(server.addr, "/parts").await;
    ws.send(&[Frame::text(&euro[..1]).fin(false)]).await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "text:|false");
    ws.send(&[Frame::new(CONT, "z")]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1007));
}

/// The endpoint's (and the server's) message limit is for whole messages: binary in parts
/// takes 20 times the limit; text, whole, is still refused over it.
#[tokio::test]
async fn parts_have_their_own_limit_or_none() {
    let server = server().await;
    let mut ws = RawWs::connect(server.addr, "/mixed").await;
    // Its frames are limited by the endpoint's limit (1 KiB here), its message by nothing.
    let frames: Vec<Frame> = (0..20)
        .map(|i| {
            let op = if i == 0 { BINARY } else { CONT };
            Frame::new(op, vec![1; 1024]).fin(i == 19)
        })
        .collect();
    ws.send(&frames).await;
    assert_eq!(
        text_of(&ws.read_frame().await.unwrap()),
        format!("received:{}", 20 * 1024)
    );
    ws.send(&[Frame::text("x".repeat(1000))]).await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "whole:1000");
    // The frame limit still holds for every frame (memory per part is bounded).
    ws.send(&[Frame::binary(vec![0; 1025])]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1009));
    let mut ws = RawWs::connect(server.addr, "/mixed").await;
    ws.send(&[Frame::text("x".repeat(1025))]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1009));

    // A handler's own limit bounds the whole message in parts, decided from the header that
    // would pass it.
    let mut ws = RawWs::connect(server.addr, "/limited").await;
    ws.send(&[
        Frame::binary(vec![0; 1500]).fin(false),
        Frame::new(CONT, vec![0; 500]),
    ])
    .await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "done:500");
    ws.send(&[
        Frame::binary(vec![0; 1500]).fin(false),
        Frame::new(CONT, vec![0; 501]),
    ])
    .await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1009));
}

/// Reads text as a `Stream` of parts and binary through `AsyncRead`; "stop" makes the text
/// handler return after its first part, leaving the rest unread.
#[derive(Default)]
struct Streams {
    log: Option<Arc<Mutex<Vec<String>>>>,
}

#[server_endpoint("/streams")]
impl Streams {
    #[on_message]
    async fn text(
        &mut self,
        session: &Session,
        mut text: TextStream,
    ) -> Result<(), std::io::Error> {
        let mut parts = Vec::new();
        while let Some(part) = text.next().await {
            let part = match part {
                Ok(part) => part,
                Err(e) => {
                    if let Some(log) = &self.log {
                        log.lock().unwrap().push(format!("error:{}", e.kind()));
                    }
                    return Err(e);
                }
            };
            // Each part is answered as it arrives: the stream is read while the message comes.
            let _ = session.send(format!("part:{part}")).await;
            let stop = part.as_str() == "stop";
            parts.push(part.to_string());
            if stop {
                break;
            }
        }
        let _ = session.send(format!("text:{}", parts.concat())).await;
        Ok(())
    }

    #[on_message]
    async fn binary(&mut self, mut data: BinaryStream) -> Result<String, std::io::Error> {
        let mut buf = vec![0u8; 1000];
        let (mut total, mut sum) = (0usize, 0u64);
        loop {
            match data.read(&mut buf).await? {
                0 => return Ok(format!("binary:{total}:{sum}")),
                n => {
                    total += n;
                    sum += buf[..n].iter().map(|&b| u64::from(b)).sum::<u64>();
                }
            }
        }
    }

    #[on_open]
    fn open(&mut self, log: State<Arc<Mutex<Vec<String>>>>) {
        self.log = Some(Arc::clone(&log));
    }
}

#[tokio::test]
async fn a_stream_is_read_while_its_message_arrives() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut limits = test_limits();
    limits.max_message_size = 4096;
    limits.max_frame_size = 4096;
    let server = start(
        Server::new()
            .limits(limits)
            .state(log.clone())
            .endpoint::<Streams>(),
    )
    .await;
    let mut ws = RawWs::connect(server.addr, "/streams").await;
    ws.send(&[Frame::text("one ").fin(false)]).await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "part:one ");
    ws.send(&[Frame::new(CONT, "two").fin(false)]).await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "part:two");
    ws.send(&[Frame::new(PING, "x"), Frame::new(CONT, "")])
        .await;
    assert_eq!(ws.read_frame().await.unwrap().opcode, PONG);
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "part:");
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "text:one two");

    // Binary through AsyncRead: 100 frames of 4 KiB (25 times the message limit), summed.
    let frames: Vec<Frame> = (0..100)
        .map(|i| {
            let op = if i == 0 { BINARY } else { CONT };
            Frame::new(op, vec![(i % 200) as u8; 4096]).fin(i == 99)
        })
        .collect();
    ws.send(&frames).await;
    let sum: u64 = (0..100u64).map(|i| (i % 200) * 4096).sum();
    assert_eq!(
        text_of(&ws.read_frame().await.unwrap()),
        format!("binary:{}:{sum}", 100 * 4096)
    );

    // The hook returns after "stop": the rest of that message is discarded, the next message
    // is a new stream.
    ws.send(&[
        Frame::text("stop").fin(false),
        Frame::new(CONT, "ignored").fin(false),
        Frame::new(CONT, "ignored too"),
        Frame::text("next"),
    ])
    .await;
    for want in ["part:stop", "text:stop", "part:next", "text:next"] {
        assert_eq!(text_of(&ws.read_frame().await.unwrap()), want);
    }

    // A close inside the message ends the stream with an error; the close is answered.
    ws.send(&[Frame::text("cut").fin(false)]).await;
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "part:cut");
    ws.send(&[Frame::close(1000, b"")]).await;
    assert_eq!(ws.read_close().await, CloseSeen::Code(1000));
    within(Duration::from_secs(5), "the stream's error", async {
        while !log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "error:unexpected end of file")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Sends messages in parts: "parts:N" writes N parts while another task sends 50 messages and
/// the handler broadcasts; "drop" drops a writer after one part; "stream:N" sends a binary
/// message of N chunks from a `Stream`; "flushed" opens a writer, has another task
/// `send_flushed` while the writer's message is open, and reports whether that send said
/// "written" before the writer's last part went out.
#[derive(Default)]
struct Writer;

#[server_endpoint("/writer")]
impl Writer {
    #[on_message]
    async fn text(&mut self, session: &Session, text: String) -> Result<(), endpoint::BoxError> {
        if let Some(n) = text.strip_prefix("parts:") {
            let n: usize = n.parse().unwrap();
            let mut writer = session.text_writer();
            writer.send("p0,", false).await?;
            let other = session.clone();
            let spam = tokio::spawn(async move {
                for i in 0..50 {
                    let _ = other.send(format!("other:{i}")).await;
                    tokio::task::yield_now().await;
                }
            });
            let _ = session.broadcast("broadcast".to_owned())?;
            for i in 1..n {
                tokio::time::sleep(Duration::from_millis(1)).await;
                writer.send(format!("p{i},"), i == n - 1).await?;
            }
            spam.await.unwrap();
        } else if text == "flushed" {
            let mut writer = session.text_writer();
            writer.send("a", false).await?;
            let other = session.clone();
            let flushed = tokio::spawn(async move { other.send_flushed("flushed").await });
            // Long enough for the other task to queue its message and the connection to write
            // everything it may write.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let early = flushed.is_finished();
            writer.send("b", true).await?;
            flushed.await.unwrap()?;
            session.send(format!("early:{early}")).await?;
        } else if text == "drop" {
            let mut writer = session.text_writer();
            writer.send("x", false).await?;
            drop(writer);
            session.send("after").await?;
        } else if let Some(n) = text.strip_prefix("stream:") {
            let n: u8 = n.parse().unwrap();
            let chunks = futures::stream::iter(0..n).map(|i| vec![i; 1000]);
            session.send_binary_stream(chunks).await?;
        }
        Ok(())
    }
}

/// The test: a writer's parts are never interleaved with other sends. The writer's
/// message is one text frame without FIN, then continuation frames only (pings aside) up to
/// FIN; the other task's 50 messages and the broadcast all come, whole and in order, after it.
/// Another session of the endpoint gets the broadcast meanwhile.
#[tokio::test]
async fn a_writers_parts_are_never_interleaved_with_other_sends() {
    let server = server().await;
    let mut bystander = RawWs::connect(server.addr, "/writer").await;
    let mut ws = RawWs::connect(server.addr, "/writer").await;
    for _ in 0..3 {
        ws.send(&[Frame::text("parts:40")]).await;
        let first = ws.read_frame().await.unwrap();
        assert_eq!((first.opcode, first.fin), (TEXT, false), "{first:?}");
        let mut message = first.payload;
        loop {
            let f = ws.read_frame().await.unwrap();
            assert_eq!(f.opcode, CONT, "another frame inside the message: {f:?}");
            message.extend_from_slice(&f.payload);
            if f.fin {
                break;
            }
        }
        let want: String = (0..40).map(|i| format!("p{i},")).collect();
        assert_eq!(String::from_utf8(message).unwrap(), want);
        let mut others = Vec::new();
        let mut broadcast = false;
        while others.len() < 50 || !broadcast {
            let f = ws.read_frame().await.unwrap();
            assert!(f.fin && f.opcode == TEXT, "{f:?}");
            match text_of(&f).as_str() {
                "broadcast" => broadcast = true,
                other => others.push(other.to_owned()),
            }
        }
        let want: Vec<String> = (0..50).map(|i| format!("other:{i}")).collect();
        assert_eq!(others, want);
        assert_eq!(text_of(&bystander.read_frame().await.unwrap()), "broadcast");
    }

    // Send completion behind an open writer: the flushed message waits behind the last part,
    // and its sender is not told "written" before it is.
    ws.send(&[Frame::text("flushed")]).await;
    let f = ws.read_frame().await.unwrap();
    assert_eq!((f.opcode, f.fin, &f.payload[..]), (TEXT, false, &b"a"[..]));
    let f = ws.read_frame().await.unwrap();
    assert_eq!((f.opcode, f.fin, &f.payload[..]), (CONT, true, &b"b"[..]));
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "flushed");
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "early:false");

    // A writer dropped inside its message ends it with an empty last frame.
    ws.send(&[Frame::text("drop")]).await;
    let f = ws.read_frame().await.unwrap();
    assert_eq!((f.opcode, f.fin, &f.payload[..]), (TEXT, false, &b"x"[..]));
    let f = ws.read_frame().await.unwrap();
    assert_eq!((f.opcode, f.fin, f.payload.len()), (CONT, true, 0));
    assert_eq!(text_of(&ws.read_frame().await.unwrap()), "after");

    // A stream of chunks: one binary message, a frame per chunk.
    ws.send(&[Frame::text("stream:5")]).await;
    for i in 0..5u8 {
        let f = ws.read_frame().await.unwrap();
        let opcode = if i == 0 { BINARY } else { CONT };
        assert_eq!((f.opcode, f.fin), (opcode, i == 4), "chunk {i}");
        assert_eq!(f.payload, vec![i; 1000]);
    }
}

/// A large frame of a message in parts is delivered in pieces as its bytes arrive: half of a
/// 200 KiB frame is answered before the other half is sent (memory per part is what arrived,
/// not the frame).
#[tokio::test]
async fn a_large_frame_is_delivered_in_pieces_as_it_arrives() {
    let server = start(Server::new().limits(test_limits()).endpoint::<Parts>()).await;
    let mut ws = RawWs::connect(server.addr, "/parts").await;
    let bytes = Frame::binary(vec![9; 200 * 1024]).encode();
    let half = bytes.len() / 2;
    ws.write(&bytes[..half]).await;
    let mut got = 0;
    while got < half - 14 - 16 * 1024 {
        let answer = text_of(&ws.read_frame().await.expect("a piece's answer"));
        let n: usize = answer
            .strip_prefix("binary:")
            .and_then(|a| a.strip_suffix("|false"))
            .unwrap_or_else(|| panic!("{answer}"))
            .parse()
            .unwrap();
        got += n;
    }
    ws.write(&bytes[half..]).await;
    loop {
        let answer = text_of(&ws.read_frame().await.unwrap());
        let (n, last) = answer
            .strip_prefix("binary:")
            .and_then(|a| a.split_once('|'))
            .unwrap();
        got += n.parse::<usize>().unwrap();
        if last == "true" {
            break;
        }
    }
    assert_eq!(got, 200 * 1024);
}
