//! `coffer token`: access tokens for `coffer serve`.

use coffer::Store;
use coffer::access::{NewToken, TokenRecord};
use serde_json::json;

use crate::cli::{TokenCommand, TokenCreateArgs};
use crate::output::{print_json, print_table};

pub async fn run(store: &Store, command: TokenCommand, json: bool) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => create(store, args, json).await,
        TokenCommand::List => list(store, json).await,
        TokenCommand::Revoke { name } => {
            store.revoke_token(&name).await?;
            match json {
                true => print_json(&json!({ "revoked": name })),
                false => {
                    println!("revoked token {name}");
                    Ok(())
                }
            }
        }
    }
}

async fn create(store: &Store, args: TokenCreateArgs, json: bool) -> anyhow::Result<()> {
    let expires_in = args
        .expires
        .as_deref()
        .map(|text| crate::hooks::span("--expires", text))
        .transpose()?;
    let issued = store
        .create_token(NewToken {
            name: args.name,
            scope: args.scope.parse()?,
            prefix: args.prefix,
            expires_in,
            s3: args.s3,
        })
        .await?;
    let record = &issued.record;
    if json {
        return print_json(&json!({
            "token": record, "secret": *issued.secret,
            "s3_secret_key": issued.s3_secret_key.as_deref().map(String::as_str),
        }));
    }
    println!("{}", *issued.secret);
    // The secret alone on stdout (`TOKEN=$(coffer token create ...)`); the note only for a person.
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "token {} ({}{}): keep the secret above; it is not shown again (send it as Authorization: Bearer ...)",
            record.name,
            record.scope,
            prefix_note(record)
        );
    }
    if let (Some(access_key), Some(secret_key)) = (&record.access_key, &issued.s3_secret_key) {
        println!("AWS_ACCESS_KEY_ID={access_key}");
        println!("AWS_SECRET_ACCESS_KEY={}", secret_key.as_str());
    }
    Ok(())
}

fn prefix_note(token: &TokenRecord) -> String {
    match token.prefix.as_str() {
        "" => String::new(),
        prefix => format!(", keys under {prefix}"),
    }
}

async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let tokens = store.tokens().await?;
    if json {
        return print_json(&tokens);
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let state = match (t.revoked_at, t.expires_at) {
                (Some(at), _) => format!("revoked {at}"),
                (None, Some(at)) if at <= coffer::time::Timestamp::now() => format!("expired {at}"),
                (None, Some(at)) => format!("expires {at}"),
                (None, None) => "no expiry".to_owned(),
            };
            vec![
                t.name.clone(),
                t.scope.to_string(),
                t.prefix.clone(),
                t.access_key.clone().unwrap_or_default(),
                state,
                t.created_by.clone(),
            ]
        })
        .collect();
    print_table(
        &["NAME", "SCOPE", "PREFIX", "S3 ACCESS KEY", "STATE", "CREATED BY"],
        &rows,
    );
    Ok(())
}
