//! `leadgate advertisers`: add, list, disable, remove, import the portal's batch file all or nothing, export it.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use leadgate::domain::document::Document;
use tempfile::TempDir;

use crate::helpers::{TestProcess, store_url};

const PUBLIC_URL: &str = "https://gw.example.com";

/// The portal source `zap` and a partner source `trendagent`, as an operator configures them; the
/// CRM is never called by these commands.
const CONFIG: &str = r#"
[destinations.main]
kind = "amocrm"
base_url = "http://127.0.0.1:9"
access_token = "NOT_USED"

[sources.zap]
kind = "zap"
secret_key = "ZAP_SECRET"
destination = "main"
pipeline = "Portal"
status = "Новая заявка"

[sources.trendagent]
kind = "partner"
key = "PARTNER_KEY_OF_TRENDAGENT"
destination = "main"
pipeline = "TrendAgent"
status = "Новая заявка"
"#;

/// The real binary against a fresh database file of its own.
struct Operator {
    dir: TempDir,
}

impl Operator {
    /// A fresh database, created as an operator would before anything else: `leadgate migrate`.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("leadgate.toml"), CONFIG).unwrap();
        let migrated = Command::new(TestProcess::BINARY)
            .arg("migrate")
            .current_dir(dir.path())
            .env("LEADGATE_CONFIG", dir.path().join("leadgate.toml"))
            .env("LEADGATE_STORE__URL", store_url(dir.path()))
            .output()
            .unwrap();
        assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
        Self { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(TestProcess::BINARY)
            .arg("advertisers")
            .args(args)
            .current_dir(self.dir.path())
            .env("LEADGATE_CONFIG", self.dir.path().join("leadgate.toml"))
            .env("LEADGATE_STORE__URL", store_url(self.dir.path()))
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns what it printed.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Exports the enabled advertisers of `zap` and returns the file's text.
    fn export(&self) -> String {
        let path = self.dir.path().join("export.csv");
        self.ok(&["export-zap", "--source", "zap", "--public-url", PUBLIC_URL, path.to_str().unwrap()]);
        std::fs::read_to_string(path).unwrap()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn operators_add_list_disable_and_enable_an_advertiser() {
    let operator = Operator::new();
    let added = operator.ok(&[
        "add",
        "--source",
        "zap",
        "--id",
        "123456",
        "--document",
        "11.222.333/0001-81",
        "--name",
        "Imobiliária X",
        "--email",
        "leads@imobiliaria-x.com.br",
        "--listing",
        "a40171",
        "--listing",
        "b2;c3",
        "--send-lead-email",
    ]);
    assert!(added.contains("123456") && added.contains("added"), "{added}");

    let listed = operator.ok(&["list", "--source", "zap"]);
    let row = listed.lines().find(|line| line.contains("123456")).expect(&listed);
    for expected in ["11222333000181", "Imobiliária X", "leads@imobiliaria-x.com.br", " 3 "] {
        assert!(row.contains(expected), "{expected} missing from {row}");
    }

    operator.ok(&["disable", "--source", "zap", "--id", "123456"]);
    assert!(!operator.ok(&["list"]).contains("123456"), "a disabled advertiser is listed only with --all");
    let all = operator.ok(&["list", "--all"]);
    assert!(all.lines().any(|line| line.contains("123456") && line.contains(" no ")), "{all}");
    assert_eq!(operator.export().lines().count(), 1, "only the header: a disabled advertiser is not exported");

    operator.ok(&["enable", "--source", "zap", "--id", "123456"]);
    assert!(operator.ok(&["list"]).contains("123456"));
    assert_eq!(operator.run(&["disable", "--source", "zap", "--id", "999"]).status.code(), Some(1));
}

#[test]
fn adding_keeps_what_an_update_does_not_mention_and_refuses_bad_input() {
    let operator = Operator::new();
    operator.ok(&["add", "--source", "zap", "--id", "1", "--document", "52998224725", "--listing", "a1"]);
    operator.ok(&["add", "--source", "zap", "--id", "1", "--name", "Ana Corretora"]);
    let listed = operator.ok(&["list"]);
    assert!(listed.contains("Ana Corretora") && listed.contains("52998224725"), "{listed}");

    let wrong_digit = operator.run(&["add", "--source", "zap", "--id", "2", "--document", "52998224726"]);
    assert_eq!(wrong_digit.status.code(), Some(2));
    assert!(stderr(&wrong_digit).contains("check digits"), "{}", stderr(&wrong_digit));
    let without_document = operator.run(&["add", "--source", "zap", "--id", "2"]);
    assert_eq!(without_document.status.code(), Some(2));
    let taken =
        operator.run(&["add", "--source", "zap", "--id", "2", "--document", "11222333000181", "--listing", "a1"]);
    assert_eq!(taken.status.code(), Some(2));
    assert!(stderr(&taken).contains("belongs to advertiser 1"), "{}", stderr(&taken));
    assert!(operator.ok(&["list"]).contains("1 advertiser(s)"), "nothing was added");
}

#[test]
fn an_imported_batch_file_exported_and_imported_again_into_a_fresh_database_round_trips() {
    let operator = Operator::new();
    // Column names in any case and order; ID overrides the URL; masks are removed.
    let file = operator.file(
        "advertisers.csv",
        "send_lead_email,Document,URL,id,Name,listings,Enabled,email\n\
         true,11.222.333/0001-81,https://old-crm.example.com/grupozap/lead/123456,,Imobiliária X,a40171;b2,,x@imobiliaria-x.com.br\n\
         NO,529.982.247-25,https://old-crm.example.com/grupozap/lead/ignored,ana-42,Ana,c3 d4,yes,\n\
         0,56921485000100,https://old-crm.example.com/grupozap/lead/777,,,,false,\n",
    );
    let imported = operator.ok(&["import", "--source", "zap", file.to_str().unwrap()]);
    assert!(imported.contains("3 advertiser(s)") && imported.contains("3 new"), "{imported}");

    let exported = operator.export();
    assert_eq!(
        exported,
        "DOCUMENT,URL,SEND_LEAD_EMAIL\n\
         11222333000181,https://gw.example.com/grupozap/lead/123456,true\n\
         52998224725,https://gw.example.com/grupozap/lead/ana-42,false\n"
    );

    // The portal's file has no e-mail column: an advertiser it flags needs its address from elsewhere.
    let fresh = Operator::new();
    let copy = fresh.file("from-portal.csv", &exported);
    let refused = fresh.run(&["import", "--source", "zap", copy.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused)
            .contains("from-portal.csv:2: advertiser 123456: SEND_LEAD_EMAIL is true but there is no e-mail"),
        "{}",
        stderr(&refused)
    );
    let with_addresses = exported.replacen("SEND_LEAD_EMAIL\n", "SEND_LEAD_EMAIL,EMAIL\n", 1).replacen(
        ",true\n",
        ",true,x@imobiliaria-x.com.br\n",
        1,
    );
    let with_addresses = with_addresses.replace(",false\n", ",false,\n");
    let copy = fresh.file("with-addresses.csv", &with_addresses);
    fresh.ok(&["import", "--source", "zap", copy.to_str().unwrap()]);
    assert_eq!(fresh.export(), exported, "same documents, ids and flags");

    let again = operator.ok(&["import", "--source", "zap", operator.dir.path().join("export.csv").to_str().unwrap()]);
    assert!(again.contains("0 new, 2 updated"), "{again}");
    let listed = operator.ok(&["list", "--all"]);
    assert!(listed.contains("Imobiliária X"), "a file without NAME keeps the stored name: {listed}");
    let row = listed.lines().find(|line| line.contains("123456")).unwrap();
    assert!(row.contains(" 2 "), "a file without LISTINGS keeps the stored listings: {row}");
}

#[test]
fn a_file_with_bad_rows_is_refused_whole_and_every_bad_line_is_named_with_its_reason() {
    let operator = Operator::new();
    let file = operator.file(
        "bad.csv",
        "DOCUMENT,URL,SEND_LEAD_EMAIL,EMAIL,LISTINGS\n\
         11222333000181,https://gw.example.com/grupozap/lead/1,true,a@example.com,a1\n\
         11222333000182,https://gw.example.com/grupozap/lead/2,true,,\n\
         52998224725,,false,,\n\
         52998224725,https://gw.example.com/grupozap/lead/4,maybe,,\n\
         52998224725,https://gw.example.com/grupozap/lead/1,false,,\n\
         52998224725,https://gw.example.com/grupozap/lead/6,false,,a1\n\
         52998224725,https://gw.example.com/grupozap/lead/7,false,not-an-address,\n\
         52998224725,https://gw.example.com/grupozap/lead,false,,\n\
         52998224725,https://gw.example.com/grupozap/lead/9,false\n",
    );
    let output = operator.run(&["import", "--source", "zap", file.to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(2));
    let report = stderr(&output);
    for (line, reason) in [
        (3, "check digits"),
        (4, "URL: empty"),
        (5, "«maybe» is not a boolean"),
        (6, "id 1 is on line 2 too"),
        (7, "listing «a1» is claimed on line 2 too"),
        (8, "«not-an-address» is not a valid e-mail address"),
        (9, "does not end in an advertiser id"),
        (10, "3 fields, but the header has 5"),
    ] {
        let expected = format!("bad.csv:{line}: ");
        let reported = report.lines().find(|text| text.contains(&expected));
        assert!(reported.is_some_and(|text| text.contains(reason)), "line {line}, «{reason}» missing from:\n{report}");
    }
    assert!(!report.contains("bad.csv:2:"), "line 2 is good:\n{report}");
    assert!(report.contains("8 bad row(s); nothing was written"), "{report}");
    assert!(operator.ok(&["list", "--all"]).contains("0 advertiser(s)"));
}

#[test]
fn an_import_cannot_take_a_listing_that_another_advertiser_owns() {
    let operator = Operator::new();
    operator.ok(&["add", "--source", "zap", "--id", "owner", "--document", "52998224725", "--listing", "a40171"]);
    let file = operator.file(
        "advertisers.csv",
        "DOCUMENT,URL,SEND_LEAD_EMAIL,LISTINGS\n11222333000181,https://gw.example.com/grupozap/lead/1,false,a40171\n",
    );

    let output = operator.run(&["import", "--source", "zap", file.to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("listing «a40171» belongs to advertiser owner"), "{}", stderr(&output));
    assert!(operator.ok(&["list"]).contains("1 advertiser(s)"));
}

#[test]
fn export_needs_the_gateways_public_address() {
    let operator = Operator::new();
    let output = operator.run(&["export-zap", "out.csv"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("public_url"), "{}", stderr(&output));
}

#[test]
fn five_thousand_advertisers_are_imported_in_seconds() {
    let operator = Operator::new();
    let mut csv = String::from("DOCUMENT,URL,SEND_LEAD_EMAIL,LISTINGS,EMAIL\n");
    for number in 0..5_000u32 {
        // The check digits are found by trying them all, so the test does not restate the algorithm.
        let base = format!("{:09}", 100_000_000 + number);
        let document = (0..100).find_map(|check| Document::parse(&format!("{base}{check:02}")).ok()).unwrap();
        let flagged = number % 2 == 0;
        let email = if flagged { format!("corretor{number}@example.com.br") } else { String::new() };
        csv.push_str(&format!("{document},{PUBLIC_URL}/grupozap/lead/{number},{flagged},L{number},{email}\n"));
    }
    let file = operator.file("large.csv", &csv);

    let started = Instant::now();
    let imported = operator.ok(&["import", "--source", "zap", file.to_str().unwrap()]);
    let took = started.elapsed();

    assert!(imported.contains("5000 advertiser(s)"), "{imported}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(operator.export().lines().count(), 5_001);
}

#[test]
fn a_source_that_is_not_a_configured_portal_is_refused_naming_the_portal_sources() {
    let operator = Operator::new();
    let file = operator.file("advertisers.csv", "DOCUMENT,ID,SEND_LEAD_EMAIL\n52998224725,1,false\n");
    let export = operator.dir.path().join("export.csv");
    let export = export.to_str().unwrap();
    for (source, problem) in
        [("zpa", "source «zpa» is not configured"), ("trendagent", "source «trendagent» is not a portal")]
    {
        for args in [
            vec!["add", "--source", source, "--id", "1", "--document", "52998224725"],
            vec!["import", "--source", source, file.to_str().unwrap()],
            vec!["export-zap", "--source", source, "--public-url", PUBLIC_URL, export],
            vec!["list", "--source", source],
            vec!["disable", "--source", source, "--id", "1"],
            vec!["remove", "--source", source, "--id", "1"],
        ] {
            let output = operator.run(&args);
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            let said = stderr(&output);
            assert!(said.contains(problem) && said.contains("the portal sources are: zap"), "{args:?}: {said}");
        }
    }
    assert!(!export_exists(&operator), "nothing was written");
    assert!(operator.ok(&["list", "--all"]).contains("0 advertiser(s)"));
}

fn export_exists(operator: &Operator) -> bool {
    operator.dir.path().join("export.csv").exists()
}

#[test]
fn send_lead_email_without_an_address_is_refused_naming_the_advertiser() {
    let operator = Operator::new();
    let output =
        operator.run(&["add", "--source", "zap", "--id", "77", "--document", "52998224725", "--send-lead-email"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("advertiser 77: SEND_LEAD_EMAIL is true but there is no e-mail"),
        "{}",
        stderr(&output)
    );
    assert!(operator.ok(&["list", "--all"]).contains("0 advertiser(s)"), "nothing was added");

    let args = ["--source", "zap", "--id", "77", "--document", "52998224725", "--email", "corretor@example.com.br"];
    operator.ok(&[&["add"][..], &args, &["--send-lead-email"]].concat());
    let removing_the_address = operator.run(&["add", "--source", "zap", "--id", "77", "--email", ""]);
    assert_eq!(removing_the_address.status.code(), Some(2), "the stored flag still needs an address");
    assert!(operator.ok(&["list"]).contains("corretor@example.com.br"));
}

#[test]
fn a_removed_advertiser_is_gone_with_its_listings_and_removing_it_again_says_so() {
    let operator = Operator::new();
    operator.ok(&["add", "--source", "zap", "--id", "123456", "--document", "52998224725", "--listing", "a40171"]);
    let removed = operator.ok(&["remove", "--source", "zap", "--id", "123456"]);
    assert!(removed.contains("123456") && removed.contains("404"), "{removed}");
    assert!(operator.ok(&["list", "--all"]).contains("0 advertiser(s)"));
    // Its listing is free again for another advertiser.
    operator.ok(&["add", "--source", "zap", "--id", "999", "--document", "11222333000181", "--listing", "a40171"]);
    let again = operator.run(&["remove", "--source", "zap", "--id", "123456"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("does not exist"), "{}", stderr(&again));
}
