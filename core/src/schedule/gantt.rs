//! Gantt chart rendering.
