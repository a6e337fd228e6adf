//! The default fixtures: one confidential client, two work tenants and five users, with fixed
//! ids so tests (and orchestrator developers reading logs) can name them.
//!
//! [`crate::Emulator::builder`] loads them unless told not to. The client has no redirect URI
//! a real test can use (the callback's port is only known at run time): add yours with
//! [`crate::EmulatorBuilder::redirect_uri`] or [`crate::Emulator::add_redirect_uri`].

use crate::model::{Client, Tenant, User};

/// The default client's application id.
pub const CLIENT_ID: &str = "a274c1a9-9b58-4ea0-92e7-9cf9d367148a";
/// The default client's secret.
pub const CLIENT_SECRET: &str = "emulator-client-secret";
/// The default client's only built-in redirect URI (a placeholder: register the real one).
pub const REDIRECT_URI: &str = "http://localhost/oauth/callback";

/// Contoso's tenant id.
pub const CONTOSO_TENANT_ID: &str = "f01e000a-5132-459d-a372-7fcbfe6c22bf";
/// Contoso's default domain.
pub const CONTOSO_DOMAIN: &str = "contoso.onmicrosoft.com";
/// Fabrikam's tenant id.
pub const FABRIKAM_TENANT_ID: &str = "d00275ea-7150-4939-93a6-de6288f0bd26";
/// Fabrikam's default domain.
pub const FABRIKAM_DOMAIN: &str = "fabrikam.onmicrosoft.com";

/// Alice, a personal account: sign-in name.
pub const ALICE_UPN: &str = "alice@outlook.com";
/// Alice's object id (personal accounts' ids start with zeros at Microsoft too).
pub const ALICE_OBJECT_ID: &str = "00000000-0000-0000-c1a9-0c73f33d4274";
/// Bob, a personal account: sign-in name.
pub const BOB_UPN: &str = "bob@hotmail.com";
/// Bob's object id.
pub const BOB_OBJECT_ID: &str = "00000000-0000-0000-2bf0-ec6ada4c4143";
/// Adele, a work account in Contoso: sign-in name.
pub const ADELE_UPN: &str = "adele@contoso.onmicrosoft.com";
/// Adele's object id.
pub const ADELE_OBJECT_ID: &str = "ebfbd1fb-30a9-4671-b8c4-45e38b9b01d6";
/// Megan, a work account in Contoso: sign-in name.
pub const MEGAN_UPN: &str = "megan@contoso.onmicrosoft.com";
/// Megan's object id.
pub const MEGAN_OBJECT_ID: &str = "703f0465-a18b-44d8-be07-b27d3648183b";
/// Diego, a work account in Fabrikam: sign-in name.
pub const DIEGO_UPN: &str = "diego@fabrikam.onmicrosoft.com";
/// Diego's object id.
pub const DIEGO_OBJECT_ID: &str = "c6aa64f2-f32e-4d73-ae7f-669cfadce64a";

/// The default client.
pub fn clients() -> Vec<Client> {
    vec![Client::new(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])]
}

/// Contoso and Fabrikam.
pub fn tenants() -> Vec<Tenant> {
    vec![
        Tenant::new(CONTOSO_TENANT_ID, CONTOSO_DOMAIN, "Contoso"),
        Tenant::new(FABRIKAM_TENANT_ID, FABRIKAM_DOMAIN, "Fabrikam"),
    ]
}

/// Directory role template id: Global Administrator.
pub const GLOBAL_ADMINISTRATOR_ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";
/// Directory role template id: Application Administrator.
pub const APPLICATION_ADMINISTRATOR_ROLE: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
/// Directory role template id: Global Reader (sees everything, may consent to nothing).
pub const GLOBAL_READER_ROLE: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

/// Alice and Bob (personal); Adele (Global Administrator) and Megan (Global Reader, no right to
/// consent) in Contoso; Diego (Application Administrator) in Fabrikam.
pub fn users() -> Vec<User> {
    vec![
        User::personal(ALICE_OBJECT_ID, ALICE_UPN, "Alice Personal"),
        User::personal(BOB_OBJECT_ID, BOB_UPN, "Bob Personal"),
        User::work(CONTOSO_TENANT_ID, ADELE_OBJECT_ID, ADELE_UPN, "Adele Vance")
            .with_directory_roles([GLOBAL_ADMINISTRATOR_ROLE]),
        User::work(CONTOSO_TENANT_ID, MEGAN_OBJECT_ID, MEGAN_UPN, "Megan Bowen")
            .with_directory_roles([GLOBAL_READER_ROLE]),
        User::work(
            FABRIKAM_TENANT_ID,
            DIEGO_OBJECT_ID,
            DIEGO_UPN,
            "Diego Siciliani",
        )
        .with_directory_roles([APPLICATION_ADMINISTRATOR_ROLE]),
    ]
}
