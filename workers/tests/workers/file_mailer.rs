//! Without `SMTP_URL`, emails are written as `.eml` files.

use crate::helpers::{TestApp, WAIT};
use testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_smtp_url_the_welcome_email_is_written_to_a_file() {
    let dir = std::env::temp_dir().join(format!("workers-mail-{}", testkit::unique_suffix()));
    let mail_dir = dir.join("nested");
    let app = TestApp::spawn_with(1, |s| {
        s.mail.smtp_url = None;
        s.mail.dir = mail_dir.clone();
    })
    .await;
    let event = app.register("Katherine", "katherine@example.com").await;

    let path = mail_dir.join(format!("{}.eml", event.id));
    let content = eventually(WAIT, "the .eml file", || async {
        tokio::fs::read_to_string(&path).await.ok()
    })
    .await;
    assert!(content.contains("Hello Katherine,"), "{content}");
    assert!(
        content.contains("To: Katherine <katherine@example.com>"),
        "{content}"
    );
    app.wait_until_handled(1).await;
    assert!(app.smtp.messages().is_empty());
    let files = std::fs::read_dir(&mail_dir).expect("mail dir").count();
    assert_eq!(files, 1, "only the finished file remains");
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
