//! Thompson sampling over the tree's nodes: each node's legal-action rate has a Beta posterior
//! (prior Beta(1, 1), one count per legal or illegal action of its rollouts); one draw per node,
//! the highest draw is refined next. The generator is seeded by the search's seed and the
//! iteration's number, so a resumed search draws what the first attempt would have drawn.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};

/// The generator of iteration `iteration` of a search seeded with `seed`.
pub fn rng(seed: u64, iteration: usize) -> StdRng {
    // SplitMix-style mixing, so that neighbouring seeds and iterations draw unrelated streams.
    let mut z = seed ^ (iteration as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// One draw from Beta(1 + legal, 1 + illegal).
pub fn draw(rng: &mut impl Rng, legal: u64, illegal: u64) -> f64 {
    // Both parameters are at least 1 and finite, so the distribution always exists.
    match Beta::new(1.0 + legal as f64, 1.0 + illegal as f64) {
        Ok(b) => b.sample(rng),
        Err(_) => 0.5,
    }
}

/// The node with the highest draw among `nodes` (id, legal, illegal), with every draw.
pub fn choose(
    rng: &mut impl Rng,
    nodes: &[(usize, u64, u64)],
) -> Option<(usize, Vec<(usize, f64)>)> {
    let draws: Vec<(usize, f64)> = nodes
        .iter()
        .map(|&(id, l, i)| (id, draw(rng, l, i)))
        .collect();
    let best = draws
        .iter()
        .copied()
        .fold(None::<(usize, f64)>, |acc, d| match acc {
            Some(a) if a.1 >= d.1 => Some(a),
            _ => Some(d),
        })?;
    Some((best.0, draws))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_posterior_mean() {
        let mut r = rng(7, 1);
        let n = 4000;
        let mean: f64 = (0..n).map(|_| draw(&mut r, 8, 2)).sum::<f64>() / n as f64;
        // Beta(9, 3) has mean 0.75.
        assert!((mean - 0.75).abs() < 0.02, "{mean}");
    }

    #[test]
    fn the_same_seed_and_iteration_draw_the_same() {
        let nodes = [(0, 3, 3), (1, 5, 1), (2, 0, 0)];
        let a = choose(&mut rng(1, 4), &nodes);
        let b = choose(&mut rng(1, 4), &nodes);
        assert_eq!(a, b);
        assert_ne!(a, choose(&mut rng(1, 5), &nodes));
    }

    #[test]
    fn a_clearly_better_node_is_chosen_most_often() {
        let nodes = [(0, 1, 20), (1, 20, 1)];
        let ones = (0..200)
            .filter(|i| choose(&mut rng(3, *i), &nodes).map(|c| c.0) == Some(1))
            .count();
        assert!(ones > 190, "{ones}");
    }
}
