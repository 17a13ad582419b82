//! Arguments of the `hooks` and `events` commands.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Add a hook (webhook, filelog, exec, nats, amqp or sqs).
    #[command(subcommand)]
    Add(AddHook),
    /// Every hook with its filter and settings (secrets hidden).
    List,
    /// Remove a hook and its pending deliveries.
    Remove {
        /// The hook.
        name: String,
    },
    /// Send a test event (type hook.test) to a hook now, and report how it went.
    Test {
        /// The hook.
        name: String,
    },
    /// Events fired, attempts, failures, success rate, latency, queue depth and dead letters per hook.
    Stats,
    /// Retry dead-lettered deliveries (of one hook, or of all).
    Replay {
        /// Only this hook's.
        name: Option<String>,
    },
    /// Dead-lettered deliveries, newest first, with their last error.
    Dead {
        /// Only this hook's.
        name: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Deliver events: run as a worker until stopped (SIGINT/SIGTERM), or --once until nothing is due.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Deliver what is due now, then exit.
    #[arg(long)]
    pub once: bool,
    /// Deliveries claimed at a time.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Deliveries in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long a claim lasts before another dispatcher may redeliver (longer than any hook's timeout).
    #[arg(long, default_value = "2m", value_name = "SPAN")]
    pub claim_timeout: String,
    /// Length of the dispatcher lease on SQLite (a standby takes over at most this long after a crash).
    #[arg(long, default_value = "15s", value_name = "SPAN")]
    pub lease: String,
    /// Delay before the first retry; each retry doubles it (with jitter).
    #[arg(long, default_value = "1s", value_name = "SPAN")]
    pub backoff: String,
    /// Longest delay between retries.
    #[arg(long, default_value = "10m", value_name = "SPAN")]
    pub max_backoff: String,
    /// Remove delivered events older than this.
    #[arg(long, default_value = "7d", value_name = "SPAN")]
    pub retention: String,
}

/// Which events a hook receives, and how it is delivered; for every kind of hook.
#[derive(Debug, Args)]
pub struct HookOptions {
    /// Only these event types, comma-separated: built-in ones (object.archived; object.* or version.* for a
    /// family) or your application's, with a prefix of their own (batch.completed, qc.*).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub events: Vec<String>,
    /// Only events about keys starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only events about keys matching this glob (* within a path segment, ** across).
    #[arg(long)]
    pub glob: Option<String>,
    /// Only events whose metadata, or else tags, have NAME=VALUE (or not, with NAME!=VALUE); repeatable, all
    /// must hold. A metadata entry NAME wins over a tag NAME.
    #[arg(long = "where", value_name = "NAME=VALUE")]
    pub conditions: Vec<String>,
    /// Deliver within the operation that fired the event (it returns after this hook was tried).
    #[arg(long)]
    pub sync: bool,
    /// Attempts before a delivery is dead-lettered.
    #[arg(long, default_value_t = coffer::DEFAULT_MAX_ATTEMPTS)]
    pub attempts: u32,
    /// Replace an existing hook of this name.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Subcommand)]
pub enum AddHook {
    /// An HTTP POST or PUT per event, signed per Standard Webhooks when given a secret.
    Webhook {
        /// The hook's name.
        name: String,
        /// Where to send.
        url: String,
        /// POST or PUT.
        #[arg(long, default_value = "POST")]
        method: String,
        /// An extra header, NAME:VALUE; repeatable.
        #[arg(long = "header", value_name = "NAME:VALUE")]
        headers: Vec<String>,
        /// Signing secret (whsec_<base64>, or any text) [env: COFFER_HOOK_SECRET].
        #[arg(long, env = "COFFER_HOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// How long the receiver has to answer.
        #[arg(long, default_value = "10s", value_name = "SPAN")]
        timeout: String,
        /// A MiniJinja template for the body instead of the CloudEvents document
        /// ({{ type }}, {{ subject }}, {{ data.key }}, {{ data | tojson }} ...).
        #[arg(long, conflicts_with = "template_file")]
        template: Option<String>,
        /// Read the template from this file.
        #[arg(long, value_name = "FILE")]
        template_file: Option<PathBuf>,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Append a line per event to a file.
    Filelog {
        /// The hook's name.
        name: String,
        /// The file (created if missing).
        path: PathBuf,
        /// json (the CloudEvents document per line) or text (time, type, key, version, id).
        #[arg(long, default_value = "json")]
        format: String,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Run a command (by sh -c) per event with the event's JSON on its standard input; exit 0 = delivered.
    Exec {
        /// The hook's name.
        name: String,
        /// The command line.
        command: String,
        /// How long it may run before it is killed.
        #[arg(long, default_value = "30s", value_name = "SPAN")]
        timeout: String,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Publish each event to a NATS JetStream subject.
    Nats {
        /// The hook's name.
        name: String,
        /// Server URL (nats://127.0.0.1:4222).
        url: String,
        /// Subject; {type} is replaced by the event type.
        #[arg(long, default_value = "coffer.{type}")]
        subject: String,
        /// Create this stream for the subject if it does not exist.
        #[arg(long)]
        stream: Option<String>,
        /// User name.
        #[arg(long)]
        user: Option<String>,
        /// Password [env: COFFER_NATS_PASSWORD].
        #[arg(long, env = "COFFER_NATS_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Token [env: COFFER_NATS_TOKEN].
        #[arg(long, env = "COFFER_NATS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Publish each event to an AMQP exchange (RabbitMQ), with publisher confirms.
    Amqp {
        /// The hook's name.
        name: String,
        /// Broker URL (amqp://user:password@127.0.0.1:5672/%2f).
        url: String,
        /// Exchange (empty: the default exchange, routing straight to a queue).
        #[arg(long, default_value = "")]
        exchange: String,
        /// Routing key; {type} is replaced by the event type.
        #[arg(long, default_value = "coffer.{type}")]
        routing_key: String,
        /// Declare this durable queue (bound to the exchange) if it does not exist.
        #[arg(long)]
        queue: Option<String>,
        #[command(flatten)]
        options: HookOptions,
    },
    /// Send each event as a message to an Amazon SQS queue.
    Sqs {
        /// The hook's name.
        name: String,
        /// Queue URL.
        queue_url: String,
        /// AWS region.
        #[arg(long, env = "AWS_REGION")]
        region: String,
        /// Endpoint instead of the queue URL's host (an emulator).
        #[arg(long)]
        endpoint: Option<String>,
        /// Access key id.
        #[arg(long, env = "AWS_ACCESS_KEY_ID")]
        access_key: String,
        /// Secret access key.
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
        secret_key: String,
        /// Session token of temporary credentials.
        #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
        session_token: Option<String>,
        #[command(flatten)]
        options: HookOptions,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Fire an event of your own (batch.completed, qc.approved ...) to the hooks that want it.
    Fire {
        /// The event type.
        event_type: String,
        /// The payload, as JSON.
        #[arg(long, default_value = "{}")]
        data: String,
        /// The key the event is about (its subject), if any.
        #[arg(long)]
        key: Option<String>,
    },
}
