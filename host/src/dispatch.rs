//! Work conservation: who is busy, and handing requests from a busy task to
//! an idle one.
//!
//! A request normally runs on the task that accepted its connection, with no
//! hop between threads. But while a task's instance is busy with a slow call
//! (which yields to the event loop now and then, see [`crate::watchdog`]),
//! requests arriving on that task's other connections would wait behind it.
//! Instead they are queued here and an idle task runs them on its own
//! instance and sends the answer back: a hop only when it saves waiting.
//!
//! The queue is bounded (`--max-pending`): past it a request is refused with
//! 503 rather than growing memory without bound.
//!
//! Connections are balanced here too. The kernel hashes new connections over
//! the tasks' SO_REUSEPORT sockets, which leaves long-lived keep-alive
//! connections unevenly spread (12 and 20 of 32 is common), and then one task
//! is saturated while another idles. A task that accepts a connection while
//! it holds two more than the least-loaded task passes the connection there:
//! one hop per connection, never per request.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::Response;
use std::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::{Notify, oneshot};

use crate::guest;
use crate::http::Body;

/// One request handed off, with where its answer goes.
pub struct Job {
    pub request: guest::Request,
    pub reply: oneshot::Sender<Response<Body>>,
}

/// What every task publishes about itself.
pub struct TaskEntry {
    /// 0 while the task's instance is free; otherwise 1 + the milliseconds
    /// (since [`Board::now_ms`]'s origin) at which it became busy.
    busy_since: AtomicU64,
    /// Wakes the task's hand-off loop.
    pub wake: Notify,
    /// Open connections the task serves.
    connections: AtomicUsize,
    /// Where other tasks send connections for this one.
    inbox: UnboundedSender<TcpStream>,
}

/// The shared state of all tasks: their entries and the hand-off queue.
pub struct Board {
    origin: Instant,
    tasks: Vec<TaskEntry>,
    queue: Mutex<VecDeque<Job>>,
    /// `queue.len()`, readable without the lock on every request's way out.
    queued: AtomicUsize,
    capacity: usize,
    /// Where the search for an idle task starts, so hand-offs spread out.
    next: AtomicUsize,
}

impl Board {
    /// A board for `tasks` tasks with room for `capacity` waiting requests,
    /// and each task's inbox of handed-over connections.
    pub fn new(tasks: usize, capacity: usize) -> (Self, Vec<UnboundedReceiver<TcpStream>>) {
        let (entries, inboxes) = (0..tasks)
            .map(|_| {
                let (inbox, receiver) = unbounded_channel();
                let entry = TaskEntry {
                    busy_since: AtomicU64::new(0),
                    wake: Notify::new(),
                    connections: AtomicUsize::new(0),
                    inbox,
                };
                (entry, receiver)
            })
            .unzip();
        let board = Board {
            origin: Instant::now(),
            tasks: entries,
            queue: Mutex::new(VecDeque::new()),
            queued: AtomicUsize::new(0),
            capacity,
            next: AtomicUsize::new(0),
        };
        (board, inboxes)
    }

    /// Decides who serves a connection task `me` just accepted: `None` for
    /// `me`, or the least-loaded task if `me` holds two or more connections
    /// more. The chosen task's count is raised at once, so a burst spreads.
    pub fn place_connection(&self, me: usize) -> Option<usize> {
        let count = |task: &TaskEntry| task.connections.load(Ordering::Relaxed);
        let mine = count(&self.tasks[me]);
        let (least, fewest) = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, task)| (i, count(task)))
            .min_by_key(|&(_, n)| n)?;
        let chosen = if mine >= fewest + 2 { least } else { me };
        self.connection_opened(chosen);
        (chosen != me).then_some(chosen)
    }

    pub fn connection_opened(&self, task: usize) {
        self.tasks[task].connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self, task: usize) {
        self.tasks[task].connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sends a connection to `task`; gives it back if that task has stopped.
    pub fn send_connection(&self, task: usize, stream: TcpStream) -> Result<(), TcpStream> {
        self.tasks[task]
            .inbox
            .send(stream)
            .map_err(|returned| returned.0)
    }

    /// Milliseconds since the board was made (the vDSO clock: no system call).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn task(&self, id: usize) -> &TaskEntry {
        &self.tasks[id]
    }

    /// Marks task `id` busy from now.
    pub fn set_busy(&self, id: usize) {
        self.tasks[id]
            .busy_since
            .store(self.now_ms() + 1, Ordering::Relaxed);
    }

    /// How long task `id` has been busy; zero if it is free.
    pub fn busy_for(&self, id: usize) -> Duration {
        match self.tasks[id].busy_since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => Duration::from_millis(self.now_ms().saturating_sub(since - 1)),
        }
    }

    /// Marks task `id` free.
    pub fn set_free(&self, id: usize) {
        self.tasks[id].busy_since.store(0, Ordering::Relaxed);
    }

    /// Whether any task has been busy for at least `ms` milliseconds.
    pub fn any_busy_for(&self, ms: u64) -> bool {
        let now = self.now_ms();
        self.tasks.iter().any(|task| {
            let since = task.busy_since.load(Ordering::Relaxed);
            since != 0 && now.saturating_sub(since - 1) >= ms
        })
    }

    /// Queues a job and wakes an idle task, or gives the job back if the
    /// queue is full.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.len() >= self.capacity {
                return Err(job);
            }
            queue.push_back(job);
            self.queued.store(queue.len(), Ordering::Release);
        }
        // Wake one idle task; if none is idle, the first task to finish its
        // call finds the job (see `has_jobs`).
        let count = self.tasks.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(idle) = (0..count)
            .map(|i| &self.tasks[(start + i) % count])
            .find(|task| task.busy_since.load(Ordering::Relaxed) == 0)
        {
            idle.wake.notify_one();
        }
        Ok(())
    }

    /// The oldest job whose client still waits.
    pub fn take(&self) -> Option<Job> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let job = std::iter::from_fn(|| queue.pop_front()).find(|job| !job.reply.is_closed());
        self.queued.store(queue.len(), Ordering::Release);
        job
    }

    /// Whether jobs are waiting (cheap: no lock).
    pub fn has_jobs(&self) -> bool {
        self.queued.load(Ordering::Acquire) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> (Job, oneshot::Receiver<Response<Body>>) {
        let (reply, rx) = oneshot::channel();
        let request = guest::Request {
            method: "GET".into(),
            path_with_query: "/".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        (Job { request, reply }, rx)
    }

    #[test]
    fn the_queue_is_bounded() {
        let (board, _inboxes) = Board::new(2, 2);
        let (a, _ra) = job();
        let (b, _rb) = job();
        let (c, _rc) = job();
        assert!(board.submit(a).is_ok());
        assert!(board.submit(b).is_ok());
        assert!(board.submit(c).is_err());
        assert!(board.has_jobs());
        assert!(board.take().is_some());
        assert!(board.take().is_some());
        assert!(!board.has_jobs());
    }

    #[test]
    fn jobs_whose_client_left_are_skipped() {
        let (board, _inboxes) = Board::new(1, 4);
        let (gone, rx) = job();
        drop(rx);
        let (waiting, _rx) = job();
        board.submit(gone).ok();
        board.submit(waiting).ok();
        assert!(board.take().is_some_and(|job| !job.reply.is_closed()));
        assert!(board.take().is_none());
    }

    #[test]
    fn connections_go_to_the_least_loaded_task() {
        let (board, _inboxes) = Board::new(3, 1);
        // Task 0 accepts everything; it keeps a lead of at most two.
        let placed: Vec<Option<usize>> = (0..6).map(|_| board.place_connection(0)).collect();
        assert_eq!(placed, [None, None, Some(1), Some(2), None, Some(1)]);
        // Counts are now 3, 2, 1.
        board.connection_closed(1);
        board.connection_closed(1);
        assert_eq!(board.place_connection(2), None, "1 is not two more than 0");
        assert_eq!(board.place_connection(0), Some(1));
    }

    #[test]
    fn busy_time_is_tracked() {
        let (board, _inboxes) = Board::new(2, 1);
        assert!(!board.any_busy_for(0));
        board.set_busy(1);
        assert!(board.any_busy_for(0));
        std::thread::sleep(Duration::from_millis(15));
        assert!(board.any_busy_for(10));
        assert!(board.busy_for(1) >= Duration::from_millis(10));
        assert_eq!(board.busy_for(0), Duration::ZERO);
        board.set_free(1);
        assert!(!board.any_busy_for(0));
    }
}
