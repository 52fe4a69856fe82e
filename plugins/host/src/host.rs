//! The engine, the component cache and one sandboxed call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tandem_integrations::Egress;
use tandem_integrations::egress::refusal;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::error::{LoadError, PluginError};
use crate::sandbox::{self, Credential};
use crate::state::{CasError, StateStore};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use bindings::tandem::plugin::{clock, http, log, state, types};
use bindings::{Plugin, PluginPre};

/// How often the epoch ticks: the granularity of the time limit.
const TICK: Duration = Duration::from_millis(5);
/// How much of each pooled linear memory stays mapped between calls: enough for a Rust guest's
/// stack, data and a small heap.
const KEEP_RESIDENT: usize = 2 << 20;
/// Longest error or log message kept from a plugin, in characters.
const MAX_MESSAGE_CHARS: usize = 2000;
/// How much of stderr (panic messages) is kept, in bytes.
const STDERR_BYTES: usize = 16 * 1024;

/// The limits every call runs under.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Linear memory a call may use, in bytes.
    pub memory_limit: usize,
    /// Wall-clock time for one call, host calls included.
    pub timeout: Duration,
    /// Largest output (JSON text) a call may return, in bytes.
    pub max_output_bytes: usize,
    /// HTTP requests one call may make.
    pub max_http_calls: u32,
    /// Largest HTTP response body a plugin may read, in bytes.
    pub max_response_bytes: usize,
    /// Time for one HTTP request (never more than what is left of the call's time).
    pub http_timeout: Duration,
    /// Which addresses `http.fetch` may reach.
    pub egress: Egress,
    /// Calls that may run at once (the pooling allocator's slots).
    pub max_concurrent_calls: u32,
    /// Log lines one call may write (more are counted, not kept).
    pub max_log_lines: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            memory_limit: 64 << 20,
            timeout: Duration::from_secs(10),
            max_output_bytes: 1 << 20,
            max_http_calls: 20,
            max_response_bytes: 5 << 20,
            http_timeout: Duration::from_secs(10),
            egress: Egress::default(),
            max_concurrent_calls: 64,
            max_log_lines: 200,
        }
    }
}

/// What the host knows about one installed plugin when it calls it.
#[derive(Debug, Clone)]
pub struct Installation {
    pub id: String,
    /// The SHA-256 (hex) of the component, as returned by [`PluginHost::load`].
    pub component: String,
    /// Hosts `http.fetch` may call (the approved `http` capability).
    pub allowed_hosts: Vec<String>,
    /// Secrets added to requests for their host.
    pub credentials: Vec<Credential>,
    /// The installation's (non-secret) settings, passed to every call.
    pub config: Value,
    pub state: Arc<dyn StateStore>,
}

/// Who calls and why; the idempotency key is the same for every attempt of one step of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub run_id: String,
    pub attempt: u32,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// One line of a run's log: what the plugin wrote, what it fetched, what it printed to stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the call started.
    pub at_ms: u64,
    pub level: LogLevel,
    pub message: String,
}

/// A call's result with its log.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub result: Result<T, PluginError>,
    pub log: Vec<LogLine>,
    pub http_calls: u32,
    pub elapsed: Duration,
}

/// Something a trigger saw; `id` is what dedupes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerItem {
    pub id: String,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Poll {
    pub items: Vec<TriggerItem>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Runs plugins. One per process; cheap to share (`Arc`).
pub struct PluginHost {
    engine: Engine,
    linker: Linker<RunState>,
    components: Mutex<HashMap<String, PluginPre<RunState>>>,
    client: reqwest::Client,
    config: HostConfig,
    ticking: Arc<AtomicBool>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

impl PluginHost {
    pub fn new(config: HostConfig) -> Result<Self, String> {
        let mut pool = PoolingAllocationConfig::new();
        let slots = config.max_concurrent_calls.max(1);
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots * 2)
            .total_tables(slots * 8)
            .total_stacks(slots)
            .max_memories_per_component(2)
            .max_tables_per_component(8)
            // The limiter below refuses growth past `memory_limit` with a clear reason first;
            // the pool's bound is a backstop.
            .max_memory_size(config.memory_limit.saturating_mul(2))
            // A slot's memory is reset between calls by copying its initial image back over the
            // pages the last call dirtied (found with the PAGEMAP_SCAN ioctl where the kernel has
            // it) instead of unmapping them: the next call takes no page faults. This halves the
            // cost of a call (benches/plugin_call.rs); the reset is as complete either way.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .max_wasm_stack(512 * 1024);
        let engine = Engine::new(&wasm).map_err(|e| format!("cannot start the WebAssembly engine: {e:#}"))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| format!("cannot link WASI: {e:#}"))?;
        Plugin::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)
            .map_err(|e| format!("cannot link the plugin imports: {e:#}"))?;

        let client = reqwest::Client::builder()
            .dns_resolver(config.egress.resolver())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.http_timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;

        let ticking = Arc::new(AtomicBool::new(true));
        let ticker = (engine.clone(), ticking.clone());
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                let (engine, ticking) = ticker;
                while ticking.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| format!("cannot start the epoch thread: {e}"))?;

        Ok(Self { engine, linker, components: Mutex::new(HashMap::new()), client, config, ticking })
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The SHA-256 (hex) of a component's bytes: its identity in the cache and the manifest.
    pub fn digest(wasm: &[u8]) -> String {
        hex::encode(Sha256::digest(wasm))
    }

    /// Compiles a component (once per SHA-256: a second load of the same bytes is a lookup),
    /// checks it against the contract and links it. Returns the SHA-256. CPU-heavy the first
    /// time: call it from a blocking thread.
    pub fn load(&self, wasm: &[u8]) -> Result<String, LoadError> {
        let digest = Self::digest(wasm);
        if self.is_loaded(&digest) {
            return Ok(digest);
        }
        let component =
            Component::new(&self.engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let pre =
            self.linker.instantiate_pre(&component).map_err(|e| LoadError::Contract(format!("{e:#}")))?;
        let pre = PluginPre::new(pre).map_err(|e| LoadError::Contract(format!("{e:#}")))?;
        if let Ok(mut components) = self.components.lock() {
            components.insert(digest.clone(), pre);
        }
        Ok(digest)
    }

    /// [`load`](Self::load), refusing bytes whose SHA-256 is not `expected`.
    pub fn load_checked(&self, wasm: &[u8], expected: &str) -> Result<String, LoadError> {
        let actual = Self::digest(wasm);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(LoadError::Checksum { expected: expected.to_string(), actual });
        }
        self.load(wasm)
    }

    pub fn is_loaded(&self, digest: &str) -> bool {
        self.components.lock().map(|c| c.contains_key(digest)).unwrap_or(false)
    }

    /// Drops a compiled component (after its last installation went away).
    pub fn unload(&self, digest: &str) {
        if let Ok(mut components) = self.components.lock() {
            components.remove(digest);
        }
    }

    /// Runs an action: the one path for flows and automations alike.
    pub async fn run_action(
        &self,
        installation: &Installation,
        action: &str,
        input: &Value,
        ctx: &Invocation,
    ) -> Result<Value, PluginError> {
        self.call_action(installation, action, input, ctx).await.result
    }

    /// [`run_action`](Self::run_action) with the run log.
    pub async fn call_action(
        &self,
        installation: &Installation,
        action: &str,
        input: &Value,
        ctx: &Invocation,
    ) -> Outcome<Value> {
        let (action, input, config) =
            (action.to_string(), input.to_string(), installation.config.to_string());
        let max = self.config.max_output_bytes;
        self.call(installation, ctx, move |plugin, store, ctx| {
            Box::pin(async move {
                let out =
                    plugin.tandem_plugin_actions().call_run(store, &ctx, &action, &config, &input).await?;
                Ok(out.map_err(from_guest).and_then(|text| parse_output(&text, max)))
            })
        })
        .await
    }

    /// Polls a trigger from `cursor` (`None`: the first poll).
    pub async fn poll(
        &self,
        installation: &Installation,
        trigger: &str,
        cursor: Option<&str>,
        ctx: &Invocation,
    ) -> Outcome<Poll> {
        let (trigger, config) = (trigger.to_string(), installation.config.to_string());
        let cursor = cursor.map(str::to_string);
        let max = self.config.max_output_bytes;
        self.call(installation, ctx, move |plugin, store, ctx| {
            Box::pin(async move {
                let out = plugin
                    .tandem_plugin_triggers()
                    .call_poll(store, &ctx, &trigger, &config, cursor.as_deref())
                    .await?;
                Ok(out.map_err(from_guest).and_then(|poll| {
                    let size: usize = poll.items.iter().map(|i| i.data.len() + i.id.len()).sum::<usize>()
                        + poll.cursor.as_ref().map_or(0, String::len);
                    check_size(size, max)?;
                    let items = poll.items.into_iter().map(item).collect::<Result<_, _>>()?;
                    Ok(Poll { items, cursor: poll.cursor })
                }))
            })
        })
        .await
    }

    /// Turns an incoming webhook request into trigger items.
    pub async fn handle_webhook(
        &self,
        installation: &Installation,
        trigger: &str,
        request: WebhookRequest,
        ctx: &Invocation,
    ) -> Outcome<Vec<TriggerItem>> {
        let (trigger, config) = (trigger.to_string(), installation.config.to_string());
        let max = self.config.max_output_bytes;
        self.call(installation, ctx, move |plugin, store, ctx| {
            Box::pin(async move {
                let request = bindings::exports::tandem::plugin::triggers::WebhookRequest {
                    method: request.method,
                    path: request.path,
                    headers: request.headers,
                    body: request.body,
                };
                let out = plugin
                    .tandem_plugin_triggers()
                    .call_handle_webhook(store, &ctx, &trigger, &config, &request)
                    .await?;
                Ok(out.map_err(from_guest).and_then(|items| {
                    check_size(items.iter().map(|i| i.data.len() + i.id.len()).sum(), max)?;
                    items.into_iter().map(item).collect()
                }))
            })
        })
        .await
    }

    /// Asks the plugin to subscribe `target_url` to a trigger; returns what unsubscribing needs.
    pub async fn subscribe(
        &self,
        installation: &Installation,
        trigger: &str,
        target_url: &str,
        ctx: &Invocation,
    ) -> Outcome<Value> {
        let (trigger, config, target) =
            (trigger.to_string(), installation.config.to_string(), target_url.to_string());
        let max = self.config.max_output_bytes;
        self.call(installation, ctx, move |plugin, store, ctx| {
            Box::pin(async move {
                let out = plugin
                    .tandem_plugin_triggers()
                    .call_subscribe(store, &ctx, &trigger, &config, &target)
                    .await?;
                Ok(out.map_err(from_guest).and_then(|text| parse_output(&text, max)))
            })
        })
        .await
    }

    pub async fn unsubscribe(
        &self,
        installation: &Installation,
        trigger: &str,
        subscription: &Value,
        ctx: &Invocation,
    ) -> Outcome<()> {
        let (trigger, config, subscription) =
            (trigger.to_string(), installation.config.to_string(), subscription.to_string());
        self.call(installation, ctx, move |plugin, store, ctx| {
            Box::pin(async move {
                let out = plugin
                    .tandem_plugin_triggers()
                    .call_unsubscribe(store, &ctx, &trigger, &config, &subscription)
                    .await?;
                Ok(out.map_err(from_guest))
            })
        })
        .await
    }

    /// One call in a fresh store: instantiate, run `f`, classify what happened.
    async fn call<T, F>(&self, installation: &Installation, ctx: &Invocation, f: F) -> Outcome<T>
    where
        F: for<'a> FnOnce(
            &'a Plugin,
            &'a mut Store<RunState>,
            types::Invocation,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<Result<T, PluginError>>> + Send + 'a>,
        >,
        T: Send,
    {
        let started = Instant::now();
        let pre = match self.components.lock().ok().and_then(|c| c.get(&installation.component).cloned()) {
            Some(pre) => pre,
            None => {
                let message = format!("the plugin's component {} is not loaded", installation.component);
                return Outcome {
                    result: Err(PluginError::Fatal(message)),
                    log: vec![],
                    http_calls: 0,
                    elapsed: started.elapsed(),
                };
            }
        };
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone()).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        let state = RunState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            started,
            deadline: started + self.config.timeout,
            memory_limit: self.config.memory_limit,
            stopped: None,
            http_calls: 0,
            log: Vec::new(),
            log_dropped: 0,
            env: RunEnv {
                installation: installation.id.clone(),
                allowed_hosts: installation.allowed_hosts.clone(),
                credentials: installation.credentials.clone(),
                state: installation.state.clone(),
                client: self.client.clone(),
                egress: self.config.egress,
                max_http_calls: self.config.max_http_calls,
                max_response_bytes: self.config.max_response_bytes,
                http_timeout: self.config.http_timeout,
                max_log_lines: self.config.max_log_lines,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        // Every tick, the guest checks the wall clock: a starved ticker thread (an overloaded
        // machine) cannot stretch the time limit, and in between the call yields to the executor,
        // so a plugin that spins never holds a worker thread for long.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            Ok(if Instant::now() >= ctx.data().deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let invocation = types::Invocation {
            installation_id: installation.id.clone(),
            run_id: ctx.run_id.clone(),
            attempt: ctx.attempt,
            idempotency_key: ctx.idempotency_key.clone(),
        };

        let timeout = self.config.timeout;
        let run = async {
            let plugin = pre.instantiate_async(&mut store).await?;
            f(&plugin, &mut store, invocation).await
        };
        // The epoch deadline stops guest code; this stops a call stuck in the host.
        let result = match tokio::time::timeout(timeout + TICK * 4, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => Err(classify(&error, store.data(), timeout)),
            Err(_) => Err(PluginError::Retryable(format!(
                "the plugin did not finish within its time limit of {} ms",
                timeout.as_millis()
            ))),
        };
        let data = store.into_data();
        let mut log = data.log;
        if data.log_dropped > 0 {
            log.push(LogLine {
                at_ms: started.elapsed().as_millis() as u64,
                level: LogLevel::Warn,
                message: format!("{} more log lines were dropped", data.log_dropped),
            });
        }
        let printed = String::from_utf8_lossy(&stderr.contents()).trim().to_string();
        if !printed.is_empty() {
            log.push(LogLine {
                at_ms: started.elapsed().as_millis() as u64,
                level: LogLevel::Error,
                message: format!("stderr: {}", truncate(&printed)),
            });
        }
        Outcome { result, log, http_calls: data.http_calls, elapsed: started.elapsed() }
    }
}

/// Maps a trap (or a host-side stop) to the class and reason the caller sees.
fn classify(error: &wasmtime::Error, state: &RunState, timeout: Duration) -> PluginError {
    if let Some(reason) = &state.stopped {
        return PluginError::Fatal(reason.clone());
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PluginError::Retryable(format!(
            "the plugin ran past its time limit of {} ms and was stopped",
            timeout.as_millis()
        )),
        Some(wasmtime::Trap::StackOverflow) => PluginError::Fatal("the plugin overflowed its stack".into()),
        Some(trap) => PluginError::Fatal(format!("the plugin crashed: {trap}")),
        None => PluginError::Fatal(format!("the plugin could not run: {}", truncate(&format!("{error:#}")))),
    }
}

fn from_guest(error: types::PluginError) -> PluginError {
    match error {
        types::PluginError::Retryable(m) => PluginError::Retryable(truncate(&m)),
        types::PluginError::RateLimited(r) => PluginError::RateLimited {
            retry_after: Duration::from_millis(r.retry_after_ms),
            message: truncate(&r.message),
        },
        types::PluginError::Auth(m) => PluginError::Auth(truncate(&m)),
        types::PluginError::InvalidInput(m) => PluginError::InvalidInput(truncate(&m)),
        types::PluginError::Fatal(m) => PluginError::Fatal(truncate(&m)),
    }
}

fn check_size(bytes: usize, max: usize) -> Result<(), PluginError> {
    if bytes > max {
        return Err(PluginError::Fatal(format!("the plugin returned {bytes} bytes; the limit is {max}")));
    }
    Ok(())
}

fn parse_output(text: &str, max: usize) -> Result<Value, PluginError> {
    check_size(text.len(), max)?;
    serde_json::from_str(text).map_err(|e| {
        PluginError::Fatal(format!(
            "the plugin returned something that is not JSON ({e}): {}",
            truncate_to(text, 100)
        ))
    })
}

fn item(item: bindings::exports::tandem::plugin::triggers::TriggerItem) -> Result<TriggerItem, PluginError> {
    if item.id.is_empty() {
        return Err(PluginError::Fatal("the plugin returned a trigger item without an id".into()));
    }
    let data = serde_json::from_str(&item.data).map_err(|e| {
        PluginError::Fatal(format!(
            "the plugin returned trigger item {:?} whose data is not JSON: {e}",
            item.id
        ))
    })?;
    Ok(TriggerItem { id: item.id, data })
}

fn truncate(text: &str) -> String {
    truncate_to(text, MAX_MESSAGE_CHARS)
}

fn truncate_to(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// What one call's host functions work with.
struct RunEnv {
    installation: String,
    allowed_hosts: Vec<String>,
    credentials: Vec<Credential>,
    state: Arc<dyn StateStore>,
    client: reqwest::Client,
    egress: Egress,
    max_http_calls: u32,
    max_response_bytes: usize,
    http_timeout: Duration,
    max_log_lines: usize,
}

/// The store's data: one per call.
struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    started: Instant,
    deadline: Instant,
    memory_limit: usize,
    /// Why the host stopped the plugin (a refused request, the memory cap), if it did.
    stopped: Option<String>,
    http_calls: u32,
    log: Vec<LogLine>,
    log_dropped: usize,
    env: RunEnv,
}

impl RunState {
    fn write_log(&mut self, level: LogLevel, message: String) {
        if self.log.len() >= self.env.max_log_lines {
            self.log_dropped += 1;
            return;
        }
        self.log.push(LogLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            level,
            message: truncate(&message),
        });
    }

    /// Stops the plugin: the call fails with `reason`, whatever the plugin does next.
    fn stop(&mut self, reason: String) -> wasmtime::Error {
        self.write_log(LogLevel::Error, reason.clone());
        self.stopped = Some(reason.clone());
        wasmtime::Error::msg(reason)
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl ResourceLimiter for RunState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Err(self.stop(format!(
                "the plugin tried to use {} MiB of memory; the limit is {} MiB",
                desired.div_ceil(1 << 20),
                self.memory_limit >> 20
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > 100_000 {
            return Err(self.stop(format!("the plugin tried to grow a table to {desired} elements")));
        }
        Ok(true)
    }
}

impl types::Host for RunState {}

impl http::Host for RunState {
    async fn fetch(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        if self.http_calls >= self.env.max_http_calls {
            return Err(self.stop(format!(
                "the plugin made more than {} HTTP requests in one call",
                self.env.max_http_calls
            )));
        }
        self.http_calls += 1;
        let url = match url::Url::parse(&request.url) {
            Ok(url) => url,
            Err(e) => {
                return Ok(Err(http::HttpError::InvalidRequest(format!(
                    "{:?} is not a URL: {e}",
                    request.url
                ))));
            }
        };
        if let Some(reason) = sandbox::refuse(&self.env.allowed_hosts, &url) {
            return Err(self.stop(format!("request refused: {reason}")));
        }
        if let Err(refused) = self.env.egress.check_url(&url) {
            return Err(self.stop(format!("request refused: {refused}")));
        }
        let method = match reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                return Ok(Err(http::HttpError::InvalidRequest(format!(
                    "{:?} is not an HTTP method",
                    request.method
                ))));
            }
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        let mut builder =
            self.env.client.request(method.clone(), url.clone()).timeout(self.env.http_timeout.min(left));
        let host =
            url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let injected: Vec<(String, String)> = self
            .env
            .credentials
            .iter()
            .filter(|c| sandbox::host_matches(&c.host, &host))
            .map(|c| (c.header.clone(), c.value.clone()))
            .collect();
        for (name, value) in &request.headers {
            // A credential's header is the host's to set.
            if injected.iter().any(|(header, _)| header.eq_ignore_ascii_case(name)) {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (header, value) in &injected {
            builder = builder.header(header.as_str(), value.as_str());
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let request = match builder.build() {
            Ok(r) => r,
            Err(e) => {
                return Ok(Err(http::HttpError::InvalidRequest(format!("cannot build the request: {e}"))));
            }
        };
        let sent = Instant::now();
        let mut response = match self.env.client.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(refused) = refusal(&e) {
                    return Err(self.stop(format!("request refused: {refused}")));
                }
                self.write_log(LogLevel::Warn, format!("http {method} {url}: {e}"));
                return Ok(Err(if e.is_timeout() {
                    http::HttpError::Timeout(format!("{url}: no answer in time"))
                } else {
                    http::HttpError::Connection(format!("{url}: {e}"))
                }));
            }
        };
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
            .collect();
        let max = self.env.max_response_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Ok(Err(http::HttpError::TooLarge(format!("{url}: the response is over {max} bytes"))));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max {
                        return Ok(Err(http::HttpError::TooLarge(format!(
                            "{url}: the response is over {max} bytes"
                        ))));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => {
                    return Ok(Err(http::HttpError::Timeout(format!(
                        "{url}: the response did not arrive in time"
                    ))));
                }
                Err(e) => return Ok(Err(http::HttpError::Connection(format!("{url}: {e}")))),
            }
        }
        self.write_log(
            LogLevel::Debug,
            format!(
                "http {method} {url} → {status} ({} bytes, {} ms)",
                body.len(),
                sent.elapsed().as_millis()
            ),
        );
        Ok(Ok(http::Response { status, headers, body }))
    }
}

impl state::Host for RunState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<state::Entry>> {
        match self.env.state.get(&self.env.installation, &key).await {
            Ok(entry) => Ok(entry.map(|e| state::Entry { value: e.value, version: e.version })),
            Err(e) => Err(self.stop(format!("the plugin's state could not be read: {e}"))),
        }
    }

    async fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<u64>,
        value: Option<String>,
    ) -> wasmtime::Result<Result<u64, state::StateError>> {
        match self.env.state.compare_and_swap(&self.env.installation, &key, expected, value).await {
            Ok(version) => Ok(Ok(version)),
            Err(CasError::Conflict { current }) => Ok(Err(state::StateError::Conflict(current))),
            Err(CasError::TooLarge(m)) => Ok(Err(state::StateError::TooLarge(m))),
            Err(e @ CasError::Store(_)) => {
                Err(self.stop(format!("the plugin's state could not be written: {e}")))
            }
        }
    }
}

impl log::Host for RunState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.write_log(level, message);
        Ok(())
    }
}

impl clock::Host for RunState {
    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
    }
}
