//! `sqlx::migrate!` embeds `migrations/` when this crate compiles; without this line a
//! new migration file would not rebuild it (sqlx's documented advice).

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
