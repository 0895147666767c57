//! Routing decisions → call destinations: one call context per route (its merged config and
//! demo audio, the shared VAD pool, ports and signalling channel), built once at start, and
//! the HTTP hook's answer turned into a destination or a reject.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::bot::demo::DemoAudio;
use crate::bot::CallInfo;
use crate::call::CallContext;
use crate::config::{BotConfig, Config};
use crate::routing::{self, Decision, HookAnswer, Router, Target};

/// Where one call goes.
#[derive(Clone)]
pub struct Destination {
    /// The route's name (`default` for the top-level bot), for the log.
    pub name: String,
    pub ctx: Arc<CallContext>,
    pub bot: Arc<BotConfig>,
}

pub struct Routing {
    pub router: Router,
    pub default: Destination,
    /// Parallel to `router.routes()`.
    routes: Vec<Destination>,
    pub hook_url: String,
    hook_timeout: Duration,
}

/// The demo audio a config needs: `base`'s if it names the same files, else loaded.
fn demo_audio(cfg: &Config, base_cfg: &Config, base: &DemoAudio) -> Result<DemoAudio, String> {
    let (d, b) = (&cfg.bot.demo, &base_cfg.bot.demo);
    if d.prompt == b.prompt && d.reply == b.reply {
        return Ok(base.clone());
    }
    DemoAudio::load(&d.prompt, &d.reply)
}

fn context(base: &CallContext, cfg: Config, audio: DemoAudio) -> CallContext {
    CallContext {
        cfg: Arc::new(cfg),
        vad: base.vad.clone(),
        audio,
        ports: base.ports.clone(),
        advertised_ip: base.advertised_ip,
        sip: base.sip.clone(),
    }
}

impl Routing {
    /// Compiles the routes of `base.cfg` and builds their contexts (loads their demo audio).
    pub fn new(base: Arc<CallContext>) -> Result<Routing, String> {
        let cfg = &base.cfg;
        let router = Router::from_config(cfg).map_err(|e| e.to_string())?;
        let mut routes = Vec::with_capacity(router.routes().len());
        for (i, route) in router.routes().iter().enumerate() {
            let audio = demo_audio(&route.config, cfg, &base.audio)
                .map_err(|e| format!("routes[{i}].bot.demo: {e}"))?;
            routes.push(Destination {
                name: route.name.clone(),
                bot: Arc::new(route.config.bot.clone()),
                ctx: Arc::new(context(&base, (*route.config).clone(), audio)),
            });
        }
        Ok(Routing {
            hook_url: cfg.routing.hook.url.clone(),
            hook_timeout: Duration::from_millis(cfg.routing.hook.timeout_ms),
            default: Destination {
                name: "default".into(),
                bot: Arc::new(cfg.bot.clone()),
                ctx: base.clone(),
            },
            routes,
            router,
        })
    }

    fn target(&self, target: &Target) -> Result<Destination, (u16, String)> {
        match target {
            Target::Default => Ok(self.default.clone()),
            Target::Route(i) => self
                .routes
                .get(*i)
                .cloned()
                .ok_or((500, "Server Internal Error".to_string())),
            Target::Reject(code) => Err((*code, routing::reason_phrase(*code).to_string())),
        }
    }

    /// The destination of a static decision, or the reject to send.
    pub fn destination(&self, decision: &Decision) -> Result<Destination, (u16, String)> {
        match decision {
            Decision::Route(i) => self.target(&Target::Route(*i)),
            Decision::Default => self.target(&Target::Default),
            Decision::Reject { code, reason } => Err((*code, reason.clone())),
        }
    }

    /// Asks the HTTP hook; its answer, or the configured fallback when it fails.
    pub async fn ask_hook(
        &self,
        info: &CallInfo,
        source: SocketAddr,
        decision: &Decision,
    ) -> Result<Destination, (u16, String)> {
        let request = routing::hook_request(info, source, decision, &self.router);
        let answer = crate::routing_hook::ask(&self.hook_url, &request, self.hook_timeout)
            .await
            .and_then(|body| routing::parse_hook_answer(&body, &self.router));
        let fallback = || self.target(self.router.hook_fallback());
        match answer {
            Ok(HookAnswer::Reject { code, reason }) => Err((code, reason)),
            Ok(HookAnswer::Route { target, bot: None }) => self.target(&target),
            Ok(HookAnswer::Route {
                target,
                bot: Some(overlay),
            }) => {
                let dest = self.target(&target)?;
                match self.with_overlay(&dest, &overlay).await {
                    Ok(d) => Ok(d),
                    Err(e) => {
                        warn!(error = %e, "routing hook: unusable bot overlay; fallback");
                        fallback()
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, fallback = %self.router.hook_fallback_name(), "routing hook failed; fallback");
                fallback()
            }
        }
    }

    /// `dest` with the hook's bot keys overlaid (validated like a configured route).
    async fn with_overlay(
        &self,
        dest: &Destination,
        overlay: &serde_json::Value,
    ) -> Result<Destination, String> {
        let cfg = routing::overlaid_config(&dest.ctx.cfg, Some(overlay), None, "hook answer: ")
            .map_err(|e| e.to_string())?;
        let base_cfg = dest.ctx.cfg.clone();
        let base_audio = dest.ctx.audio.clone();
        // New demo files are read off the async threads (they are rarely more than 1 MB).
        let (cfg, audio) = tokio::task::spawn_blocking(move || {
            let audio = demo_audio(&cfg, &base_cfg, &base_audio);
            (cfg, audio)
        })
        .await
        .map_err(|e| format!("loading demo audio: {e}"))?;
        let audio = audio?;
        Ok(Destination {
            name: format!("{}+hook", dest.name),
            bot: Arc::new(cfg.bot.clone()),
            ctx: Arc::new(context(&dest.ctx, cfg, audio)),
        })
    }
}
