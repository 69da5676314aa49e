//! The leads a run posts: a unique Idempotency-Key each, some phones once and some two to four times, shuffled.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::{Rng, RngExt};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct PlannedLead {
    pub key: String,
    pub phone: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct LeadPlan {
    pub leads: Vec<PlannedLead>,
}

impl LeadPlan {
    /// `count` leads over 60 % as many phones, numbered from `+7999{first_number}`: every phone is sent
    /// once, and phones in turn are sent one to three more times until `count` is reached.
    pub fn new(count: usize, label: &str, first_number: usize, rng: &mut impl Rng) -> Self {
        let distinct = (count * 3 / 5).clamp(1, count.max(1));
        let phones: Vec<String> = (0..distinct).map(|n| format!("+7999{:07}", first_number + n)).collect();
        let mut sequence = phones.clone();
        for phone in phones.iter().cycle() {
            if sequence.len() >= count {
                break;
            }
            let repeats = rng.random_range(1..=3).min(count - sequence.len());
            sequence.extend(std::iter::repeat_n(phone.clone(), repeats));
        }
        sequence.truncate(count);
        sequence.shuffle(rng);
        let leads = sequence
            .into_iter()
            .enumerate()
            .map(|(n, phone)| PlannedLead {
                key: format!("{label}-{n}"), phone, name: format!("Клиент {label} {n}")
            })
            .collect();
        Self { leads }
    }

    pub fn distinct_phones(&self) -> BTreeSet<String> {
        self.leads.iter().map(|lead| lead.phone.clone()).collect()
    }
}

impl PlannedLead {
    pub fn body(&self, callback_url: Option<&str>) -> Value {
        let mut body = json!({ "name": self.name, "phone": self.phone, "comment": self.key });
        if let Some(url) = callback_url {
            body["callbackUrl"] = json!(url);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn a_plan_sends_sixty_percent_distinct_phones_each_at_most_four_times_under_unique_keys() {
        let plan = LeadPlan::new(1000, "plan", 0, &mut StdRng::seed_from_u64(7));
        assert_eq!(plan.leads.len(), 1000);
        assert_eq!(plan.distinct_phones().len(), 600);
        let mut per_phone = BTreeMap::<&str, usize>::new();
        for lead in &plan.leads {
            *per_phone.entry(&lead.phone).or_default() += 1;
        }
        assert!(per_phone.values().all(|sent| (1..=4).contains(sent)));
        let keys: BTreeSet<&str> = plan.leads.iter().map(|lead| lead.key.as_str()).collect();
        assert_eq!(keys.len(), 1000);
    }
}
