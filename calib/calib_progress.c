/* Progress bar with ETA (see calib_progress.h). */
#include "calib_progress.h"

#include <stdio.h>
#include <time.h>

double calib_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

void calib_progress_start(calib_progress *p, int enabled, long steps_total, long evals_total)
{
    *p = (calib_progress){.enabled = enabled, .steps_total = steps_total, .evals_total = evals_total,
                          .start_ms = calib_now_ms()};
}

void calib_progress_step(calib_progress *p, double ms)
{
    p->steps_done++;
    p->step_ms += ms;
    calib_progress_draw(p, 0);
}

void calib_progress_eval(calib_progress *p, double ms)
{
    p->evals_done++;
    p->eval_ms += ms;
    calib_progress_draw(p, 0);
}

static double eta_seconds(const calib_progress *p)
{
    double per_step = p->steps_done ? p->step_ms / p->steps_done : 0;
    double per_eval = p->evals_done ? p->eval_ms / p->evals_done : per_step;
    if (!p->steps_done)
        per_step = per_eval;
    return ((p->steps_total - p->steps_done) * per_step + (p->evals_total - p->evals_done) * per_eval) / 1e3;
}

void calib_progress_draw(calib_progress *p, int force)
{
    if (!p->enabled)
        return;
    double now = calib_now_ms();
    if (!force && now - p->last_draw_ms < 200)
        return;
    p->last_draw_ms = now;
    double est_total = p->step_ms + p->eval_ms + eta_seconds(p) * 1e3;
    double frac = est_total > 0 ? (p->step_ms + p->eval_ms) / est_total : 0;
    if (p->steps_done == 0 && p->evals_done == 0)
        frac = 0;
    const int width = 28;
    int filled = (int)(frac * width + 0.5);
    double eta = eta_seconds(p);
    char eta_text[32];
    if (p->steps_done == 0 && p->evals_done == 0)
        snprintf(eta_text, sizeof eta_text, "--");
    else if (eta >= 60)
        snprintf(eta_text, sizeof eta_text, "%dm%02ds", (int)(eta / 60), (int)eta % 60);
    else
        snprintf(eta_text, sizeof eta_text, "%.0fs", eta);
    char evals[64] = "";
    if (p->evals_total > 0)
        snprintf(evals, sizeof evals, "  layers %ld/%ld", p->evals_done, p->evals_total);
    fprintf(stderr, "\r[%.*s%*s] %3.0f%%  steps %ld/%ld%s  ETA %s   ", filled, "############################",
            width - filled, "", 100 * frac, p->steps_done, p->steps_total, evals, eta_text);
    fflush(stderr);
}

void calib_progress_finish(calib_progress *p)
{
    if (!p->enabled)
        return;
    calib_progress_draw(p, 1);
    fprintf(stderr, "\n");
}
