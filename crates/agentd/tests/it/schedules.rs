//! Schedules: an every-second schedule with two replicas runs each occurrence once;
//! create, list, change, delete and their refusals; pausing stops it, resuming starts it
//! from now, triggering runs it at once; what each `catchup` policy does with the
//! occurrences missed while the server was down.

use std::collections::BTreeSet;
use std::time::Duration;

use agentd_api_types::{CreateScheduleRequest, Invocation, InvocationStatus, PatchScheduleRequest, Schedule};
use agentd_client::InvocationFilter;
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, TestTenant, poll_invocation};

/// Faster passes than the default second, so occurrences are claimed close to their time.
const TICK: [(&str, &str); 1] = [("AGENTD_SCHEDULE_TICK_MS", "200")];

fn every_second(agent: &str) -> CreateScheduleRequest {
    CreateScheduleRequest {
        agent: agent.to_owned(),
        cron: "* * * * * *".to_owned(),
        timezone: "UTC".to_owned(),
        input: json!({"from": "schedule"}),
        ..CreateScheduleRequest::default()
    }
}

/// Every invocation of `agent`, all pages.
async fn invocations_of(tenant: &TestTenant, agent: &str) -> Vec<Invocation> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let filter = InvocationFilter {
            agent: Some(agent.to_owned()),
            limit: Some(200),
            cursor: cursor.clone(),
            ..InvocationFilter::default()
        };
        let page = tenant.client.invocations_list(&filter).await.expect("list invocations");
        all.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

/// Polls until `agent` has at least `n` invocations, for at most `within`.
async fn wait_for_runs(tenant: &TestTenant, agent: &str, n: usize, within: Duration) -> Vec<Invocation> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let found = invocations_of(tenant, agent).await;
        if found.len() >= n || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn scheduled_ms(invocations: &[Invocation]) -> Vec<i64> {
    let mut times: Vec<i64> = invocations.iter().map(|i| i.scheduled_at.expect("scheduled_at").unix_ms()).collect();
    times.sort_unstable();
    times
}

async fn problem(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

on_both_stores!(an_every_second_schedule_runs_each_occurrence_once_across_replicas);
async fn an_every_second_schedule_runs_each_occurrence_once_across_replicas(backend: Backend) {
    let app = TestApp::spawn_with(backend, &TICK).await;
    // SQLite is one server per database; on PostgreSQL a second replica claims too.
    let replica = match backend {
        Backend::Postgres => Some(app.replica().await),
        Backend::Sqlite => None,
    };
    let tenant = app.signup("ticking").await;
    app.deploy_script(&tenant, "tick", "true").await;
    let request = CreateScheduleRequest {
        overlap: Some("allow".to_owned()),
        catchup: Some("all".to_owned()),
        ..every_second("tick")
    };
    let schedule = tenant.client.schedule_create(&request).await.expect("create");
    tokio::time::sleep(Duration::from_secs(10)).await;
    tenant.client.schedule_set_enabled(schedule.id.as_str(), false).await.expect("pause");
    // Whatever was claimed before the pause has made its invocation by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let runs = invocations_of(&tenant, "tick").await;
    let times = scheduled_ms(&runs);
    let distinct: BTreeSet<i64> = times.iter().copied().collect();
    assert_eq!(distinct.len(), times.len(), "two invocations for one occurrence: {times:?}");
    // About ten seconds' worth; a loaded machine may start late, never run one twice.
    assert!((5..=13).contains(&times.len()), "{} runs in ~10 s: {times:?}", times.len());
    // `catchup = all`: every second from the first to the last, none missing.
    let first = times[0];
    assert!(times.iter().enumerate().all(|(n, t)| *t == first + 1000 * n as i64), "gaps: {times:?}");
    for run in &runs {
        assert_eq!(run.schedule_id.as_ref(), Some(&schedule.id));
        assert_eq!(run.input, json!({"from": "schedule"}));
    }
    let shown = tenant.client.schedule_get(schedule.id.as_str()).await.unwrap();
    assert_eq!(shown.last_run_at.map(|t| t.unix_ms()), times.last().copied());
    assert!(shown.last_invocation_id.is_some());
    assert_eq!(shown.next_run_at, None);
    // The schedule's invocations are audited with the schedule as their actor.
    let audit: Value = tenant
        .client
        .request(Method::GET, "/v1/audit?action=invocation.create&limit=1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"][0]["actor"]["type"], "schedule", "{audit}");
    assert_eq!(audit["data"][0]["actor"]["id"], schedule.id.as_str());
    drop(replica);
}

on_both_stores!(schedules_are_created_listed_changed_and_deleted);
async fn schedules_are_created_listed_changed_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("sched-alpha").await;
    let beta = app.signup("sched-beta").await;
    app.deploy_script(&alpha, "daily", "true").await;

    let request = CreateScheduleRequest {
        cron: "30 2 * * *".to_owned(),
        timezone: "Europe/Berlin".to_owned(),
        metadata: Some(json!({"team": "ops"})),
        ..every_second("daily")
    };
    let created: Schedule = alpha.client.schedule_create(&request).await.expect("create");
    assert!(created.id.as_str().starts_with("sch_"));
    assert_eq!((created.agent.as_str(), created.cron.as_str()), ("daily", "30 2 * * *"));
    assert_eq!(created.timezone, "Europe/Berlin");
    assert!(created.enabled);
    assert_eq!((created.overlap.as_str(), created.catchup.as_str()), ("skip", "latest"));
    assert_eq!(created.metadata, json!({"team": "ops"}));
    assert_eq!((created.last_run_at, created.last_error.as_deref()), (None, None));
    // 02:30 in Berlin is 00:30 or 01:30 UTC, depending on the season.
    let next = created.next_run_at.expect("next_run_at").to_string();
    assert!(next.contains("T00:30:00") || next.contains("T01:30:00"), "{next}");

    let second = alpha.client.schedule_create(&every_second("daily")).await.unwrap();
    let page = alpha.client.schedules_list(Some(1), None).await.unwrap();
    assert_eq!(page.data[0].id, second.id, "newest first");
    let rest = alpha.client.schedules_list(Some(1), page.next_cursor.as_deref()).await.unwrap();
    assert_eq!(rest.data[0].id, created.id);
    assert!(beta.client.schedules_list(None, None).await.unwrap().data.is_empty());

    let change = PatchScheduleRequest {
        cron: Some("0 9 * * 1-5".to_owned()),
        timezone: Some("UTC".to_owned()),
        overlap: Some("allow".to_owned()),
        catchup: Some("all".to_owned()),
        input: Some(json!({"n": 2})),
        ..PatchScheduleRequest::default()
    };
    let changed = alpha.client.schedule_patch(created.id.as_str(), &change).await.expect("patch");
    assert_eq!((changed.cron.as_str(), changed.timezone.as_str()), ("0 9 * * 1-5", "UTC"));
    assert_eq!((changed.overlap.as_str(), changed.catchup.as_str()), ("allow", "all"));
    assert_eq!(changed.input, json!({"n": 2}));
    assert!(changed.next_run_at.expect("next").to_string().contains("T09:00:00"));
    assert_eq!(changed.metadata, json!({"team": "ops"}), "a field not given is kept");

    // Refusals, each with its code.
    let post = |body: Value| {
        let client = alpha.client.clone();
        async move { problem(client.request(Method::POST, "/v1/schedules").json(&body).send().await.unwrap()).await }
    };
    let base = json!({"agent": "daily", "cron": "* * * * *", "timezone": "UTC"});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    assert_eq!(post(with("cron", json!("* * *"))).await, (422, "invalid_cron".to_owned()));
    assert_eq!(post(with("cron", json!("61 * * * *"))).await, (422, "invalid_cron".to_owned()));
    assert_eq!(post(with("cron", json!("0 0 30 2 *"))).await, (422, "invalid_cron".to_owned()));
    assert_eq!(post(with("timezone", json!("Mars/Olympus"))).await, (422, "invalid_timezone".to_owned()));
    assert_eq!(post(with("overlap", json!("sometimes"))).await, (422, "invalid_schedule_policy".to_owned()));
    assert_eq!(post(with("catchup", json!("never"))).await, (422, "invalid_schedule_policy".to_owned()));
    assert_eq!(post(with("agent", json!("ghost"))).await.0, 404);
    assert_eq!(post(with("colour", json!("blue"))).await.0, 422, "unknown fields are refused");
    let bad_patch = alpha
        .client
        .request(Method::PATCH, &format!("/v1/schedules/{}", created.id))
        .json(&json!({"timezone": "Nowhere/Special"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(bad_patch).await, (422, "invalid_timezone".to_owned()));

    // Another workspace's schedule does not exist for it.
    let id = created.id.as_str();
    assert_eq!(beta.client.schedule_get(id).await.unwrap_err().status(), Some(404));
    assert_eq!(beta.client.schedule_set_enabled(id, false).await.unwrap_err().status(), Some(404));
    assert_eq!(beta.client.schedule_trigger(id).await.unwrap_err().status(), Some(404));
    assert_eq!(beta.client.schedule_delete(id).await.unwrap_err().status(), Some(404));
    assert_eq!(alpha.client.schedule_get("sch_nope").await.unwrap_err().status(), Some(404));

    alpha.client.schedule_delete(id).await.expect("delete");
    assert_eq!(alpha.client.schedule_get(id).await.unwrap_err().status(), Some(404));
    assert_eq!(alpha.client.schedule_delete(id).await.unwrap_err().status(), Some(404));
    let audit: Value = alpha
        .client
        .request(Method::GET, "/v1/audit?resource_type=schedule")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"schedule.create") && actions.contains(&"schedule.update"), "{actions:?}");
    assert!(actions.contains(&"schedule.delete"), "{actions:?}");
}

on_both_stores!(pausing_stops_a_schedule_and_trigger_runs_it_now);
async fn pausing_stops_a_schedule_and_trigger_runs_it_now(backend: Backend) {
    let app = TestApp::spawn_with(backend, &TICK).await;
    let tenant = app.signup("sched-pause").await;
    app.deploy_script(&tenant, "pulse", "true").await;
    let schedule = tenant.client.schedule_create(&every_second("pulse")).await.unwrap();
    let id = schedule.id.as_str();
    assert!(!wait_for_runs(&tenant, "pulse", 1, Duration::from_secs(30)).await.is_empty(), "it never ran");

    let paused = tenant.client.schedule_set_enabled(id, false).await.unwrap();
    assert!(!paused.enabled);
    assert_eq!(paused.next_run_at, None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = invocations_of(&tenant, "pulse").await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(invocations_of(&tenant, "pulse").await.len(), before, "a paused schedule ran");

    // Run now, paused or not: the invocation names the schedule and the time it was asked.
    let asked = agentd_api_types::Timestamp::now().unix_ms();
    let run = tenant.client.schedule_trigger(id).await.expect("trigger");
    assert_eq!(run.schedule_id.as_ref(), Some(&schedule.id));
    assert!(run.scheduled_at.expect("scheduled_at").unix_ms() >= asked);
    let done = poll_invocation(&tenant, run.id.as_str(), Duration::from_secs(30), |i| i.status.is_terminal()).await;
    assert_eq!(done.status, InvocationStatus::Succeeded);
    assert_eq!(tenant.client.schedule_get(id).await.unwrap().last_invocation_id, Some(run.id.clone()));
    let audit: Value = tenant
        .client
        .request(Method::GET, "/v1/audit?action=schedule.trigger")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"][0]["details"]["invocation_id"], run.id.as_str(), "{audit}");

    // Resuming starts from the next occurrence after now, and it runs again.
    let resumed = tenant.client.schedule_set_enabled(id, true).await.unwrap();
    let next = resumed.next_run_at.expect("next_run_at").unix_ms();
    assert!(next > agentd_api_types::Timestamp::now().unix_ms() - 1000);
    let more = wait_for_runs(&tenant, "pulse", before + 2, Duration::from_secs(30)).await;
    assert!(more.len() >= before + 2, "it did not run after resuming");
    // Nothing was caught up from the paused time.
    let caught_up = more.iter().filter(|i| i.id != run.id && i.scheduled_at.unwrap().unix_ms() < asked);
    assert_eq!(caught_up.count(), before);
}

on_both_stores!(an_occurrence_refused_is_recorded_and_the_schedule_moves_on);
async fn an_occurrence_refused_is_recorded_and_the_schedule_moves_on(backend: Backend) {
    let app = TestApp::spawn_with(backend, &TICK).await;
    let tenant = app.signup("sched-refused").await;
    app.deploy_script(&tenant, "off", "true").await;
    let patch = agentd_api_types::PatchAgentRequest {
        status: Some(agentd_api_types::AgentStatus::Disabled),
        ..Default::default()
    };
    tenant.client.agent_patch("off", &patch).await.expect("disable agent");
    let schedule = tenant.client.schedule_create(&every_second("off")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let shown = tenant.client.schedule_get(schedule.id.as_str()).await.unwrap();
        if shown.last_error.is_some() || tokio::time::Instant::now() >= deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error = shown.last_error.expect("last_error");
    assert!(error.contains("disabled"), "{error}");
    assert!(shown.next_run_at.unwrap().unix_ms() > shown.last_run_at.unwrap().unix_ms(), "it moved on");
    assert!(invocations_of(&tenant, "off").await.is_empty());
}

on_both_stores!(missed_occurrences_follow_each_catchup_policy);
async fn missed_occurrences_follow_each_catchup_policy(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &TICK).await;
    let tenant = app.signup("sched-catchup").await;
    for agent in ["all", "latest", "skip"] {
        app.deploy_script(&tenant, agent, "true").await;
    }
    // Three occurrences a few seconds ahead (and then not for a minute): the server is
    // down for all three.
    let now_ms = agentd_api_types::Timestamp::now().unix_ms();
    let first_ms = (now_ms / 1000 + 7) * 1000;
    let times: Vec<i64> = (0..3).map(|n| first_ms + n * 1000).collect();
    let seconds: Vec<String> = times.iter().map(|t| ((t / 1000) % 60).to_string()).collect();
    let cron = format!("{} * * * * *", seconds.join(","));
    let mut ids = Vec::new();
    for policy in ["all", "latest", "skip"] {
        let request = CreateScheduleRequest {
            cron: cron.clone(),
            overlap: Some("allow".to_owned()),
            catchup: Some(policy.to_owned()),
            ..every_second(policy)
        };
        ids.push(tenant.client.schedule_create(&request).await.expect("create").id);
    }
    app.crash().await;
    assert!(
        agentd_api_types::Timestamp::now().unix_ms() < first_ms,
        "the server was still up at the first occurrence; the machine is too slow for this test"
    );
    // Down until the last occurrence is well past `catchup = skip`'s 10 s grace.
    let back_at = times[2] + 12_000;
    let wait = back_at - agentd_api_types::Timestamp::now().unix_ms();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    app.start_again().await;
    // The server listens on a new port: a client of its own.
    let tenant = TestTenant { client: app.client().with_token(tenant.key.clone()), ..tenant };

    let all = wait_for_runs(&tenant, "all", 3, Duration::from_secs(30)).await;
    assert_eq!(scheduled_ms(&all), times, "catchup = all runs every missed occurrence once");
    let latest = wait_for_runs(&tenant, "latest", 1, Duration::from_secs(30)).await;
    assert_eq!(scheduled_ms(&latest), vec![times[2]], "catchup = latest runs the newest once");
    // The skip schedule was looked at in the same passes; give it a moment more anyway.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let skipped = loop {
        let shown = tenant.client.schedule_get(ids[2].as_str()).await.unwrap();
        if shown.last_error.is_some() || tokio::time::Instant::now() >= deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(skipped.last_error.as_deref().unwrap_or_default().contains("missed"), "{skipped:?}");
    assert!(invocations_of(&tenant, "skip").await.is_empty(), "catchup = skip ran a missed occurrence");
    // Each moved on to the next minute's occurrences.
    for id in &ids {
        let shown = tenant.client.schedule_get(id.as_str()).await.unwrap();
        assert!(shown.next_run_at.unwrap().unix_ms() > times[2], "{shown:?}");
    }
    // Nothing more came of the downtime.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(invocations_of(&tenant, "all").await.len(), 3);
    assert_eq!(invocations_of(&tenant, "latest").await.len(), 1);
}

on_both_stores!(an_occurrence_is_skipped_while_the_previous_run_goes_on);
async fn an_occurrence_is_skipped_while_the_previous_run_goes_on(backend: Backend) {
    let app = TestApp::spawn_with(backend, &TICK).await;
    let tenant = app.signup("sched-overlap").await;
    app.deploy_script(&tenant, "slow", "sleep 3").await;
    // Every second, `overlap` left at its default (`skip`): a run takes three.
    let schedule = tenant.client.schedule_create(&every_second("slow")).await.unwrap();
    let id = schedule.id.as_str();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut saw_skip = false;
    loop {
        let shown = tenant.client.schedule_get(id).await.unwrap();
        saw_skip |= shown.last_error.as_deref().is_some_and(|e| e.contains("overlap"));
        if (saw_skip && invocations_of(&tenant, "slow").await.len() >= 2) || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_skip, "no occurrence was skipped for overlap");
    tenant.client.schedule_set_enabled(id, false).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut runs = Vec::new();
    for run in invocations_of(&tenant, "slow").await {
        runs.push(poll_invocation(&tenant, run.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await);
    }
    assert!(runs.len() >= 2, "{runs:?}");
    runs.sort_by_key(|r| r.created_at.unix_ms());
    for pair in runs.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert!(
            after.created_at.unix_ms() >= before.finished_at.expect("finished").unix_ms(),
            "{} was made while {} was going",
            after.id,
            before.id
        );
    }
}

on_both_stores!(schedules_are_managed_from_the_command_line);
async fn schedules_are_managed_from_the_command_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::write_shell_agent(dir.path(), "yearly", "true");
    shell.ok(&["agents", "deploy", &dir.path().to_string_lossy()]).await;

    let created =
        shell.ok(&["schedules", "create", "yearly", "--cron", "0 0 1 1 *", "--input", r#"{"a": 1}"#, "--json"]).await;
    let created = crate::cli::json(&created.stdout);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sch_"), "{created}");
    assert_eq!((created["timezone"].as_str(), created["input"].clone()), (Some("UTC"), json!({"a": 1})));
    let listed = crate::cli::json(&shell.ok(&["schedules", "list", "--json"]).await.stdout);
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let shown = shell.ok(&["schedules", "show", &id]).await;
    assert!(shown.stdout.contains(&id) && shown.stdout.contains("0 0 1 1 *"), "{shown:#?}");

    let paused = crate::cli::json(&shell.ok(&["schedules", "pause", &id, "--json"]).await.stdout);
    assert_eq!((paused["enabled"].clone(), paused["next_run_at"].clone()), (json!(false), Value::Null));
    let resumed = crate::cli::json(&shell.ok(&["schedules", "resume", &id, "--json"]).await.stdout);
    assert_eq!(resumed["enabled"], true);
    assert!(resumed["next_run_at"].is_string());
    let run = crate::cli::json(&shell.ok(&["schedules", "trigger", &id, "--json"]).await.stdout);
    assert_eq!(run["schedule_id"], id.as_str());
    assert!(run["scheduled_at"].is_string());

    shell.ok(&["schedules", "delete", &id]).await;
    let gone = shell.run(&["schedules", "show", &id]).await;
    assert_eq!(gone.code, Some(4), "not found: {gone:#?}");
    assert!(gone.stderr.contains("not_found") || gone.stderr.contains("not found"), "{gone:#?}");
    let refused = shell.run(&["schedules", "create", "yearly", "--cron", "every day"]).await;
    assert_eq!(refused.code, Some(2), "invalid (422): {refused:#?}");
    assert!(refused.stderr.contains("invalid_cron"), "{refused:#?}");
}

on_both_stores!(an_occurrence_claimed_by_a_replica_that_died_is_run_once);
async fn an_occurrence_claimed_by_a_replica_that_died_is_run_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, &TICK).await;
    let tenant = app.signup("sched-orphan").await;
    app.deploy_script(&tenant, "orphan", "true").await;
    let request = CreateScheduleRequest { enabled: Some(false), ..every_second("orphan") };
    let schedule = tenant.client.schedule_create(&request).await.unwrap();
    // What a replica killed between its claim and its invoke leaves: a claimed occurrence
    // with no invocation, claimed long ago.
    let at = 1_700_000_000_000_i64;
    app.execute_sql(&format!(
        "INSERT INTO schedule_occurrences (schedule_id, scheduled_at, tenant_id, outcome, claimed_at)
         VALUES ('{}', {at}, '{}', 'claimed', 0)",
        schedule.id, tenant.signup.tenant.id
    ))
    .await;
    let runs = wait_for_runs(&tenant, "orphan", 1, Duration::from_secs(30)).await;
    assert_eq!(scheduled_ms(&runs), vec![at], "{runs:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(invocations_of(&tenant, "orphan").await.len(), 1, "the orphan ran twice");
    let shown = tenant.client.schedule_get(schedule.id.as_str()).await.unwrap();
    assert_eq!(shown.last_invocation_id.as_ref(), Some(&runs[0].id));
}
