/* A progress bar with ETA on stderr. Work comes in two kinds that cost very
 * different times (a sampler step, and the evaluation of every candidate on
 * one sampled layer), so each kind's mean time is tracked on its own. */
#ifndef SLA2_CALIB_PROGRESS_H
#define SLA2_CALIB_PROGRESS_H

typedef struct calib_progress {
    int enabled;
    long steps_total, steps_done, evals_total, evals_done;
    double step_ms, eval_ms; /* time spent in each kind so far */
    double start_ms, last_draw_ms;
} calib_progress;

double calib_now_ms(void);
void calib_progress_start(calib_progress *p, int enabled, long steps_total, long evals_total);
void calib_progress_step(calib_progress *p, double ms);
void calib_progress_eval(calib_progress *p, double ms);
void calib_progress_draw(calib_progress *p, int force);
void calib_progress_finish(calib_progress *p);

#endif
