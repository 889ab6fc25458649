//! Following an invocation live over `GET /v1/invocations/{id}/events` (Server-Sent
//! Events): each event once, in order, until the end. A dropped connection is reopened
//! with `Last-Event-ID`, so nothing is missed or repeated across a network drop.

use std::collections::VecDeque;
use std::time::Duration;

use agentd_api_types::{Event, InvocationError, InvocationStatus};
use reqwest::{Method, Response};

use crate::{Client, ClientError};

/// Reconnects in a row before a drop is reported as the error it is.
const MAX_RECONNECTS: u32 = 10;
/// Pause before reconnecting, doubled each time up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// What a follower yields.
#[derive(Debug, Clone)]
pub enum Followed {
    Event(Event),
    /// The invocation is over and every event of it was yielded.
    End {
        status: InvocationStatus,
        error: Option<InvocationError>,
    },
}

/// A live reader of one invocation's events (see [`Client::follow`]).
pub struct Follower {
    client: Client,
    id: String,
    /// The `seq` of the last event yielded: where a reconnect resumes.
    last: Option<u64>,
    response: Option<Response>,
    buffer: Vec<u8>,
    pending: VecDeque<Followed>,
    ended: bool,
}

impl Client {
    /// Follows invocation `id`'s events after `after` (`None`: from the first).
    pub fn follow(&self, id: &str, after: Option<u64>) -> Follower {
        Follower {
            client: self.clone(),
            id: id.to_owned(),
            last: after,
            response: None,
            buffer: Vec::new(),
            pending: VecDeque::new(),
            ended: false,
        }
    }
}

impl Follower {
    /// The next event, then the end; `None` after the end. An invocation waiting for
    /// input is followed for as long as the caller keeps asking.
    pub async fn next(&mut self) -> Result<Option<Followed>, ClientError> {
        let mut failures = 0;
        let mut pause = FIRST_PAUSE;
        loop {
            if let Some(next) = self.pending.pop_front() {
                if let Followed::Event(event) = &next {
                    self.last = Some(event.seq);
                }
                return Ok(Some(next));
            }
            if self.ended {
                return Ok(None);
            }
            match self.read().await {
                Ok(true) => failures = 0,
                Ok(false) => {}
                // A refusal (404, 401) will not change by asking again.
                Err(err @ ClientError::Api { .. }) => return Err(err),
                Err(err) if failures >= MAX_RECONNECTS => return Err(err),
                Err(_) => {
                    self.response = None;
                    failures += 1;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }

    /// Reads one chunk (connecting first when needed) and queues the messages it
    /// completed. `Ok(false)` when the server closed the stream before its end.
    async fn read(&mut self) -> Result<bool, ClientError> {
        if self.response.is_none() {
            let mut request = self.client.route(Method::GET, &["v1", "invocations", &self.id, "events"])?;
            request = request.header("accept", "text/event-stream");
            if let Some(last) = self.last {
                request = request.header("last-event-id", last.to_string());
            }
            self.response = Some(self.client.call_raw(request).await?);
            self.buffer.clear();
        }
        let Some(response) = self.response.as_mut() else { return Ok(false) };
        match response.chunk().await.map_err(ClientError::Transport)? {
            Some(chunk) => {
                self.buffer.extend_from_slice(&chunk);
                self.take_messages()?;
                Ok(true)
            }
            None => {
                self.response = None;
                Err(ClientError::StreamClosed)
            }
        }
    }

    /// Moves every complete message (ended by a blank line) from the buffer to `pending`.
    fn take_messages(&mut self) -> Result<(), ClientError> {
        while let Some(at) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buffer.drain(..at + 2).collect();
            let block = String::from_utf8_lossy(&block);
            let (mut event, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    event = value.trim_start().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            let decode = |e| ClientError::Decode { status: 200, body: data.chars().take(200).collect(), source: e };
            match event.as_str() {
                // A comment (keep-alive) carries neither.
                "" if data.is_empty() => {}
                "end" => {
                    let end: StreamEnd = serde_json::from_str(&data).map_err(decode)?;
                    self.pending.push_back(Followed::End { status: end.status, error: end.error });
                    self.ended = true;
                    self.response = None;
                }
                "error" => return Err(ClientError::StreamFailed { detail: data }),
                _ => self.pending.push_back(Followed::Event(serde_json::from_str(&data).map_err(decode)?)),
            }
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct StreamEnd {
    status: InvocationStatus,
    error: Option<InvocationError>,
}
