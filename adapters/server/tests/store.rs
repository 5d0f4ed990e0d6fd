//! The store's atomic decisions under concurrency, on the backend the test process runs
//! on (`CLOUDBASE_AUTH_TEST_BACKEND`: SQLite by default, or PostgreSQL). On PostgreSQL
//! the concurrent callers use separate stores (separate connection pools) on one
//! database, as separate server instances do.

use cloudbase_auth_server::DatabaseUrl;
use cloudbase_auth_server::store::{
    BindOutcome, CodeRedemption, Identity, NewFamily, PgStore, ProviderGrant, Rotation,
    SharedCodes, SqliteStore, Store, StoredKey, Successor, UserRecord, WeChatCode,
};
use cloudbase_auth_server::testing::{PgCluster, postgres_backend};
use std::sync::Arc;
use std::time::Duration;

const ENV: &str = "e1";
/// Concurrent callers per race.
const RACERS: usize = 8;

/// `n` handles on one fresh store: one SQLite store shared, or `n` PostgreSQL stores
/// (instances) on one new database. The temp dir lives as long as the stores.
async fn stores(n: usize) -> (Vec<Arc<dyn Store>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    if postgres_backend() {
        let url = PgCluster::shared().new_database();
        let mut all: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..n {
            all.push(Arc::new(pg(&url).await));
        }
        (all, dir)
    } else {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        (vec![store; n], dir)
    }
}

async fn pg(url: &DatabaseUrl) -> PgStore {
    PgStore::connect(url, Duration::from_secs(5)).await.unwrap()
}

async fn close(stores: Vec<Arc<dyn Store>>) {
    for s in stores {
        s.close().await;
    }
}

fn user(uid: &str) -> UserRecord {
    UserRecord::new(uid.to_owned(), ENV.to_owned(), true, 100)
}

fn identity(openid: &str) -> Identity {
    Identity::new("wxapp".to_owned(), openid.to_owned(), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_share_one_successor_then_reuse_kills_the_family() {
    let (stores, _dir) = stores(RACERS).await;
    let first = [1u8; 32];
    stores[0]
        .create_anonymous(
            &user("u1"),
            &NewFamily::new("f1".into(), first, 10_000),
            100,
        )
        .await
        .unwrap();
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                let successor = Successor::new([10 + i as u8; 32], vec![i as u8; 32], 10_000);
                store
                    .rotate_refresh(&first, ENV, &successor, 200, 10)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotated = Vec::new();
    let mut replayed = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Rotation::Rotated { family, .. } => {
                assert_eq!(family, "f1");
                rotated.push(());
            }
            Rotation::Replayed { successor_hash, .. } => replayed.push(successor_hash),
            other => panic!("within the grace window: {other:?}"),
        }
    }
    assert_eq!(rotated.len(), 1, "exactly one rotation wins");
    assert_eq!(replayed.len(), RACERS - 1);
    // Every loser got the winner's successor: the one stored as current.
    let winner = replayed[0].clone();
    assert!(replayed.iter().all(|h| *h == winner));
    let winner: [u8; 32] = winner.try_into().unwrap();
    assert_eq!(
        stores[1].family_of_refresh(&winner, ENV).await.unwrap(),
        Some("f1".to_owned())
    );
    // After the grace window, the rotated token again: the family dies everywhere.
    let late = Successor::new([99; 32], vec![0; 32], 10_000);
    assert!(matches!(
        stores[2]
            .rotate_refresh(&first, ENV, &late, 300, 10)
            .await
            .unwrap(),
        Rotation::ReuseDetected
    ));
    for store in &stores {
        assert!(store.session_user("f1").await.unwrap().is_none());
        assert!(matches!(
            store
                .rotate_refresh(&winner, ENV, &late, 300, 10)
                .await
                .unwrap(),
            Rotation::Invalid
        ));
    }
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_token_is_taken_once() {
    let (stores, _dir) = stores(RACERS).await;
    let hash = [7u8; 32];
    let grant = ProviderGrant::new(ENV.into(), identity("o1"), 1_000);
    stores[0].put_provider_grant(&hash, &grant).await.unwrap();
    let tasks: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move { store.take_provider_grant(&hash, ENV, 100).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        if let Some(g) = t.await.unwrap() {
            assert_eq!(g, grant);
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_sign_ins_of_one_openid_make_one_user() {
    let (stores, _dir) = stores(RACERS).await;
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                let family = NewFamily::new(format!("f{i}"), [i as u8; 32], 10_000);
                store
                    .sign_in_identity(ENV, &identity("o-race"), &format!("u{i}"), &family, 100)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut uids = Vec::new();
    for t in tasks {
        let user = t.await.unwrap();
        assert_eq!(user.identities, [identity("o-race")]);
        uids.push(user.uid);
    }
    uids.dedup();
    assert_eq!(uids.len(), 1, "one user for one openid: {uids:?}");
    assert_eq!(stores[0].count_users().await.unwrap(), 1);
    // Every sign-in got a live session of that user.
    for i in 0..RACERS {
        let session = stores[0].session_user(&format!("f{i}")).await.unwrap();
        assert_eq!(session.map(|u| u.uid), Some(uids[0].clone()));
    }
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_openid_binds_to_one_of_two_racing_users() {
    let (stores, _dir) = stores(RACERS).await;
    for i in 0..RACERS {
        let family = NewFamily::new(format!("f{i}"), [i as u8; 32], 10_000);
        stores[0]
            .create_anonymous(&user(&format!("u{i}")), &family, 100)
            .await
            .unwrap();
    }
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .bind_identity(&format!("u{i}"), ENV, &identity("o-bind"), 200)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut bound = 0;
    for t in tasks {
        match t.await.unwrap() {
            BindOutcome::Bound => bound += 1,
            BindOutcome::BoundElsewhere => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(bound, 1);
    let owners: Vec<_> = stores[0]
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| !u.identities.is_empty())
        .collect();
    assert_eq!(owners.len(), 1);
    assert!(!owners[0].anonymous);
    close(stores).await;
}

/// PostgreSQL only (a SQLite server keeps emulated codes in its memory): a code is
/// redeemed once across instances, and not at all once expired or by another app.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_wechat_codes_are_single_use_across_instances() {
    let cluster = PgCluster::shared();
    let url = cluster.new_database();
    let mut codes: Vec<Arc<PgStore>> = Vec::new();
    for _ in 0..RACERS {
        codes.push(Arc::new(pg(&url).await));
    }
    let hash = [3u8; 32];
    let code = WeChatCode::new("wxapp".into(), "o1".into(), None, None, 5_000);
    codes[0].put_wechat_code(&hash, &code).await.unwrap();
    assert_eq!(
        codes[1]
            .redeem_wechat_code(&hash, "wxother", 1_000)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    let tasks: Vec<_> = codes
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move { store.redeem_wechat_code(&hash, "wxapp", 1_000).await })
        })
        .collect();
    let (mut redeemed, mut used) = (0, 0);
    for t in tasks {
        match t.await.unwrap().unwrap() {
            CodeRedemption::Redeemed(c) => {
                assert_eq!(c, code);
                redeemed += 1;
            }
            CodeRedemption::Used => used += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((redeemed, used), (1, RACERS - 1));
    let late = [4u8; 32];
    codes[0].put_wechat_code(&late, &code).await.unwrap();
    assert_eq!(
        codes[2]
            .redeem_wechat_code(&late, "wxapp", 5_000)
            .await
            .unwrap(),
        CodeRedemption::Invalid,
        "expired"
    );
    for store in codes {
        store.close().await;
    }
}

/// Instances starting at once on a new database: the migrator's advisory lock lets one
/// apply the schema while the others wait, and all of them start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_at_once_migrate_once() {
    let url = PgCluster::shared().new_database();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect(&url, Duration::from_secs(10)).await })
        })
        .collect();
    let mut started = Vec::new();
    for t in tasks {
        started.push(t.await.unwrap().expect("every instance starts"));
    }
    assert_eq!(started[3].count_users().await.unwrap(), 0);
    for s in started {
        s.close().await;
    }
}

/// The database stopped and started again: calls fail as *unavailable* (503) while it
/// is down, and the same store works again once it is back, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_survives_a_database_restart() {
    let cluster = PgCluster::start().expect("PostgreSQL starts");
    let url = cluster.new_database();
    let store = PgStore::connect(&url, Duration::from_secs(1))
        .await
        .unwrap();
    store
        .create_anonymous(
            &user("u1"),
            &NewFamily::new("f1".into(), [1; 32], 10_000),
            100,
        )
        .await
        .unwrap();
    cluster.stop_server().unwrap();
    let down = store.count_users().await.expect_err("the database is down");
    assert!(down.is_unavailable(), "{down}");
    let down = store
        .create_anonymous(
            &user("u2"),
            &NewFamily::new("f2".into(), [2; 32], 10_000),
            100,
        )
        .await
        .expect_err("the database is down");
    assert!(down.is_unavailable(), "{down}");
    cluster.start_server().unwrap();
    assert_eq!(
        store.count_users().await.unwrap(),
        1,
        "u1 kept, u2 never acknowledged"
    );
    store
        .create_anonymous(
            &user("u2"),
            &NewFamily::new("f2".into(), [2; 32], 10_000),
            100,
        )
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 2);
    store.close().await;
}

fn signing_key(kid: &str, created_at: i64) -> StoredKey {
    StoredKey::new(
        kid.to_owned(),
        vec![7; 32],
        vec![9; 72],
        created_at,
        created_at,
    )
}

/// `(kid, retired_at)` of every key, by kid.
async fn retirements(store: &dyn Store) -> Vec<(String, Option<i64>)> {
    let mut keys: Vec<_> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.retired_at))
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_rotation_is_all_or_nothing() {
    let (stores, _dir) = stores(1).await;
    let store = &*stores[0];
    store.add_signing_key(&signing_key("a", 0)).await.unwrap();
    assert_eq!(
        store
            .rotate_signing_key(&signing_key("b", 10), 100)
            .await
            .unwrap(),
        ["a"]
    );
    // A key retired before the new retirement time keeps its own.
    assert_eq!(
        store
            .rotate_signing_key(&signing_key("c", 20), 200)
            .await
            .unwrap(),
        ["b"]
    );
    let before = retirements(store).await;
    assert_eq!(
        before,
        [
            ("a".to_owned(), Some(100)),
            ("b".to_owned(), Some(200)),
            ("c".to_owned(), None)
        ]
    );
    // A rotation that fails (its kid exists) retires nothing.
    store
        .rotate_signing_key(&signing_key("c", 30), 300)
        .await
        .unwrap_err();
    assert_eq!(retirements(store).await, before);
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_key_rotations_leave_one_key_unretired() {
    let (stores, _dir) = stores(RACERS).await;
    stores[0]
        .add_signing_key(&signing_key("first", 0))
        .await
        .unwrap();
    let mut racers = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .rotate_signing_key(&signing_key(&format!("k{i}"), 10), 100)
                .await
                .unwrap()
        }));
    }
    let mut retired_by_someone = Vec::new();
    for r in racers {
        retired_by_someone.extend(r.await.unwrap());
    }
    let keys = retirements(&*stores[0]).await;
    let live: Vec<_> = keys.iter().filter(|(_, r)| r.is_none()).collect();
    assert_eq!(live.len(), 1, "{keys:?}");
    // Every other key was retired exactly once, by one of the rotations.
    retired_by_someone.sort();
    let mut others: Vec<_> = keys
        .iter()
        .filter(|(_, r)| r.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    others.sort();
    assert_eq!(retired_by_someone, others);
    close(stores).await;
}
