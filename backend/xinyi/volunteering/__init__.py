"""Volunteer organisations' volunteers and their service hours (志愿服务时长)."""
