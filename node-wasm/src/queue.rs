//! Backpressure for one data channel: a bounded queue in front of `RTCDataChannel.send`.
//!
//! The browser buffers whatever `send` is given (`bufferedAmount`) and closes the channel when its own
//! buffer overflows, so the shell never lets `bufferedAmount` grow past [`HIGH_WATER`]: above it, frames
//! wait here; when the browser's buffer drains to [`LOW_WATER`] (`bufferedamountlow`), they are sent. The
//! queue itself is bounded ([`QUEUE_BYTES`], [`QUEUE_FRAMES`]); a frame that does not fit is dropped and
//! counted — the core re-sends what matters (routed messages are acknowledged hop by hop).

use std::collections::VecDeque;

/// Above this many buffered bytes the shell stops handing frames to the channel.
pub const HIGH_WATER: usize = 4 << 20;
/// The channel's `bufferedAmountLowThreshold`: below it, queued frames flow again.
pub const LOW_WATER: usize = 1 << 20;
/// Bytes the shell queues per link before it drops frames.
pub const QUEUE_BYTES: usize = 8 << 20;
/// Frames the shell queues per link before it drops frames.
pub const QUEUE_FRAMES: usize = 4096;

/// What became of a frame given to [`SendQueue::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Send it now.
    SendNow(Vec<u8>),
    /// It waits in the queue.
    Queued,
    /// The queue is full: dropped (and counted).
    Dropped,
    /// Larger than the channel's maximum message size: dropped (and counted).
    Oversize,
}

/// The bounded queue of one link.
#[derive(Debug)]
pub struct SendQueue {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    max_bytes: usize,
    max_frames: usize,
    high: usize,
    /// The channel's maximum message size (0 = unknown: no limit applied).
    pub max_message: usize,
    /// Frames dropped because the queue was full.
    pub dropped: u64,
    /// Frames dropped because they were over `max_message`.
    pub oversize: u64,
}

impl Default for SendQueue {
    fn default() -> Self {
        SendQueue::new(HIGH_WATER, QUEUE_BYTES, QUEUE_FRAMES)
    }
}

impl SendQueue {
    /// A queue that keeps the channel under `high` buffered bytes and holds at most `max_bytes` /
    /// `max_frames` itself.
    pub fn new(high: usize, max_bytes: usize, max_frames: usize) -> SendQueue {
        SendQueue {
            frames: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_frames,
            high,
            max_message: 0,
            dropped: 0,
            oversize: 0,
        }
    }

    /// A frame to send while the channel holds `buffered` bytes. Order is kept: nothing overtakes a queued
    /// frame.
    pub fn push(&mut self, frame: Vec<u8>, buffered: usize) -> Push {
        if self.max_message > 0 && frame.len() > self.max_message {
            self.oversize += 1;
            return Push::Oversize;
        }
        if self.frames.is_empty() && buffered < self.high {
            return Push::SendNow(frame);
        }
        if self.frames.len() >= self.max_frames || self.bytes + frame.len() > self.max_bytes {
            self.dropped += 1;
            return Push::Dropped;
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
        Push::Queued
    }

    /// The frames to send now that the channel holds `buffered` bytes: as many as keep it under the
    /// high-water mark (at least one when it is under).
    pub fn drain(&mut self, mut buffered: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while buffered < self.high {
            let Some(frame) = self.frames.pop_front() else { break };
            self.bytes -= frame.len();
            buffered += frame.len();
            out.push(frame);
        }
        out
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_mark_frames_go_straight_out() {
        let mut q = SendQueue::new(100, 1000, 10);
        assert_eq!(q.push(vec![1; 10], 0), Push::SendNow(vec![1; 10]));
        assert_eq!(q.push(vec![2; 10], 99), Push::SendNow(vec![2; 10]));
        assert!(q.is_empty());
    }

    #[test]
    fn above_the_mark_frames_wait_in_order_and_drain_to_the_mark() {
        let mut q = SendQueue::new(100, 1000, 10);
        for i in 0..5u8 {
            assert_eq!(q.push(vec![i; 40], 100), Push::Queued);
        }
        // Nothing overtakes the queue, even when the channel drained meanwhile.
        assert_eq!(q.push(vec![9; 40], 0), Push::Queued);
        assert_eq!(q.bytes(), 240);
        let out = q.drain(30);
        // 30 + 40 + 40 = 110 ≥ 100 after the second frame.
        assert_eq!(out, vec![vec![0; 40], vec![1; 40]]);
        assert_eq!(q.drain(100), Vec::<Vec<u8>>::new());
        let rest = q.drain(0);
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0][0], 2);
        assert_eq!(q.drain(0), vec![vec![9; 40]]);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_and_frames() {
        let mut q = SendQueue::new(0, 100, 3);
        assert_eq!(q.push(vec![0; 60], 0), Push::Queued);
        assert_eq!(q.push(vec![0; 60], 0), Push::Dropped);
        assert_eq!(q.push(vec![0; 10], 0), Push::Queued);
        assert_eq!(q.push(vec![0; 10], 0), Push::Queued);
        assert_eq!(q.push(vec![0; 1], 0), Push::Dropped);
        assert_eq!(q.dropped, 2);
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn frames_over_the_max_message_size_are_refused() {
        let mut q = SendQueue { max_message: 16, ..SendQueue::default() };
        assert_eq!(q.push(vec![0; 17], 0), Push::Oversize);
        assert_eq!(q.push(vec![0; 16], 0), Push::SendNow(vec![0; 16]));
        assert_eq!(q.oversize, 1);
    }
}
